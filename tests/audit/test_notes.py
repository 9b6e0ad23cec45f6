"""Checkpoint notes: format, parsing of hostile input, and the pure-Python Ed25519 verifier."""

from __future__ import annotations

import base64
import contextlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.audit import inspector, notes
from synthguard.audit.notes import _verify_pure

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _note(origin: str = "example.com/log", size: int = 5, root: bytes = b"\x01" * 32) -> str:
    body = notes.checkpoint_body(origin, size, root)
    return body + "\n" + notes.signature_line(origin, PUBLIC, KEY.sign(body.encode()))


def test_a_signed_checkpoint_round_trips() -> None:
    checkpoint = notes.verify_checkpoint(_note(), "example.com/log", PUBLIC)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == ("example.com/log", 5, b"\x01" * 32)
    assert checkpoint.body == "example.com/log\n5\n" + base64.b64encode(b"\x01" * 32).decode() + "\n"


def test_another_key_or_name_or_body_is_refused() -> None:
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    with pytest.raises(notes.NoteError, match="no signature"):
        notes.verify_checkpoint(_note(), "example.com/log", other)
    with pytest.raises(notes.NoteError, match="no signature"):
        notes.verify_checkpoint(_note(), "example.com/other", PUBLIC)
    with pytest.raises(notes.NoteError, match="not valid"):
        notes.verify_checkpoint(_note().replace("\n5\n", "\n6\n"), "example.com/log", PUBLIC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a\n5\n",
        "a\n05\nAAAA\n\n— a AAAAAAA=\n",
        "a\n5\n!!\n\n— a AAAAAAA=\n",
        "a\n5\nAAAA\n\n— a AAAAAAA=\n",
    ],
)
def test_malformed_notes_are_note_errors(text: str) -> None:
    with pytest.raises(notes.NoteError):
        notes.parse_checkpoint(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parsing_arbitrary_text_raises_only_note_errors(text: str) -> None:
    with contextlib.suppress(notes.NoteError):
        notes.parse_checkpoint(text)


@settings(max_examples=8, deadline=None)
@given(message=st.binary(max_size=200), flip=st.integers(0, 64 * 8 - 1))
def test_the_pure_python_verifier_agrees_with_cryptography(message: bytes, flip: int) -> None:
    signature = KEY.sign(message)
    assert _verify_pure(PUBLIC, signature, message) and notes.verify_ed25519(PUBLIC, signature, message)
    broken = bytearray(signature)
    broken[flip // 8] ^= 1 << (flip % 8)
    assert not _verify_pure(PUBLIC, bytes(broken), message)
    assert not notes.verify_ed25519(PUBLIC, bytes(broken), message)
    assert not _verify_pure(PUBLIC, signature, message + b"x")


def test_the_inspector_reads_pem_public_keys() -> None:
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert inspector.public_key_from_pem(pem.decode()) == PUBLIC
    rsa_like = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(inspector.BundleError):
        inspector.public_key_from_pem(rsa_like)
