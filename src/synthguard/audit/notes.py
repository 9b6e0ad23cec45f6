"""Checkpoints as C2SP signed notes, and Ed25519 verification (standard library only).

A checkpoint (C2SP tlog-checkpoint, the RFC 9162 signed tree head in signed-note form) is the text::

    <origin>\\n
    <tree size, decimal>\\n
    <root hash, base64>\\n
    \\n
    \\u2014 <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

The signature covers the body: the first three lines with their newlines. The key hash is the first 4
bytes of ``SHA-256(key name || "\\n" || 0x01 || 32-byte public key)`` (C2SP signed-note, algorithm
byte 0x01 = Ed25519). The key name is the origin.

Hand-written because it must run with nothing but the standard library inside an export bundle
(``audit export`` copies this file there): ``verify_ed25519`` uses ``cryptography`` when it is
installed and otherwise a small pure-Python implementation of RFC 8032 §5.1.7 verification (slow,
about a few milliseconds per signature, fine for the checkpoints of one bundle). Both are tested to
agree (``tests/audit/test_notes.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

__all__ = [
    "Checkpoint",
    "NoteError",
    "checkpoint_body",
    "key_hash",
    "parse_checkpoint",
    "signature_line",
    "verify_checkpoint",
    "verify_ed25519",
]

_DASH = "\u2014"
#: Longest note accepted by the parser.
MAX_NOTE_BYTES = 16 * 1024


class NoteError(ValueError):
    """A note that is not a well-formed checkpoint (what is wrong is in the message)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint: body fields and its signature lines ``(key name, key hash, signature)``."""

    origin: str
    size: int
    root: bytes
    body: str
    signatures: tuple[tuple[str, bytes, bytes], ...]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The signed text of a checkpoint."""
    if not origin or "\n" in origin or origin != origin.strip():
        raise NoteError(f"bad checkpoint origin {origin!r}")
    if size < 0 or len(root) != 32:
        raise NoteError("bad checkpoint size or root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte C2SP key hash of an Ed25519 public key named ``name``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + public_key).digest()[:4]


def signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    """One signature line of a note."""
    blob = base64.b64encode(key_hash(name, public_key) + signature).decode("ascii")
    return f"{_DASH} {name} {blob}\n"


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a checkpoint note; ``NoteError`` says what is malformed. Signatures are NOT checked here."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteError("note too large")
    body, separator, sigs = note.partition("\n\n")
    if not separator or not note.endswith("\n"):
        raise NoteError("note has no blank line before its signatures or does not end with a newline")
    lines = body.split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint body must have origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("empty origin")
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"bad tree size {size_text!r}")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise NoteError(f"root hash is not base64: {error}") from error
    if len(root) != 32:
        raise NoteError("root hash is not 32 bytes")
    signatures: list[tuple[str, bytes, bytes]] = []
    for line in sigs[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or not parts[1]:
            raise NoteError(f"bad signature line {line!r}")
        try:
            blob = base64.b64decode(parts[2].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as error:
            raise NoteError(f"signature is not base64: {error}") from error
        if len(blob) < 5:
            raise NoteError("signature too short")
        signatures.append((parts[1], blob[:4], blob[4:]))
    if not signatures:
        raise NoteError("note has no signature")
    return Checkpoint(origin, int(size_text), root, body + "\n", tuple(signatures))


def verify_checkpoint(note: str, name: str, public_key: bytes) -> Checkpoint:
    """Parse ``note`` and check that key ``name`` with ``public_key`` signed it; ``NoteError`` if not."""
    checkpoint = parse_checkpoint(note)
    expected = key_hash(name, public_key)
    for signer, hashed, signature in checkpoint.signatures:
        if signer == name and hashed == expected:
            if verify_ed25519(public_key, signature, checkpoint.body.encode("utf-8")):
                return checkpoint
            raise NoteError(
                f"the signature of {name} on the checkpoint of size {checkpoint.size} is not valid"
            )
    raise NoteError(f"the checkpoint of size {checkpoint.size} carries no signature of key {name}")


# -- Ed25519 verification ------------------------------------------------------------------------


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032 Ed25519 verification: ``cryptography`` when installed, else pure Python."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        from cryptography.exceptions import InvalidSignature  # optional in a bundle
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - the bundle's fallback, tested directly
        return _verify_pure(public_key, signature, message)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa = (y1 - x1) * (y2 - x2) % _P
    pb = (y1 + x1) * (y2 + x2) % _P
    pc = t1 * 2 * _D * t2 % _P
    pd = z1 * 2 * z2 % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(a: _Point, b: _Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if x & 1 != sign:
        x = _P - x
    return x


def _decompress(data: bytes) -> _Point | None:
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G: _Point = (_GX, _GY, 1, _GX * _GY % _P)


def _verify_pure(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032 §5.1.7 (cofactorless, as ``cryptography``/OpenSSL): ``[S]B == R + [k]A``."""
    point_a = _decompress(public_key)
    point_r = _decompress(signature[:32])
    if point_a is None or point_r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    return _equal(_mul(s, _G), _add(point_r, _mul(k, point_a)))
