"""ReservedCode1/2 signatures: bind the label to the content, with SM2/SM3 and Ed25519."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthguard.aigc import AigcLabel
from synthguard.config import Settings
from synthguard.errors import ConfigError, SignatureError
from synthguard.labels.security import (
    KeyRing,
    SignatureStatus,
    Signer,
    Slot,
    generate_key,
    payload_digest,
    summarize,
    verify_label,
)
from tests.conftest import PRODUCER, PROPAGATOR

LABEL = AigcLabel(Label="1", ContentProducer=PRODUCER, ProduceID="0123456789ABCDEF")


@pytest.fixture(params=["ed25519", "sm2"], scope="module")
def signer(request: pytest.FixtureRequest) -> Signer:
    private, _ = generate_key(request.param)
    return Signer(request.param, private)


def check(label: AigcLabel, signer: Signer, content: bytes) -> SignatureStatus:
    digest = payload_digest([content], signer.digest_algorithm)
    ring = KeyRing([signer.public])
    return summarize(verify_label(label, "jpeg", {signer.digest_algorithm: digest}, ring))


def sign(label: AigcLabel, signer: Signer, content: bytes, slot: Slot = Slot.GENERATOR) -> AigcLabel:
    value = signer.sign(label, slot, "jpeg", payload_digest([content], signer.digest_algorithm))
    field = "ReservedCode1" if slot is Slot.GENERATOR else "ReservedCode2"
    return label.replace(**{field: value})


def test_signature_fits_the_safe_character_set(signer: Signer) -> None:
    signed = sign(LABEL, signer, b"pixels")
    signed.validate_for_writing()
    assert signed.ReservedCode1.startswith(f"SG1.{signer.algorithm}.{signer.public.kid}.")


def test_intact_label_verifies(signer: Signer) -> None:
    assert check(sign(LABEL, signer, b"pixels"), signer, b"pixels") is SignatureStatus.VALID


def test_label_copied_onto_other_content_is_invalid(signer: Signer) -> None:
    assert check(sign(LABEL, signer, b"pixels"), signer, b"other") is SignatureStatus.INVALID


def test_edited_label_is_invalid(signer: Signer) -> None:
    signed = sign(LABEL, signer, b"pixels")
    assert check(signed.replace(ProduceID="0000000000000001"), signer, b"pixels") is (SignatureStatus.INVALID)


def test_platform_signature_covers_the_generator_signature(signer: Signer) -> None:
    generated = sign(LABEL, signer, b"pixels")
    relabeled = generated.replace(ContentPropagator=PROPAGATOR, PropagateID="42")
    both = sign(relabeled, signer, b"pixels", Slot.PLATFORM)
    assert check(both, signer, b"pixels") is SignatureStatus.VALID
    # the generator signature still verifies after the platform filled its members
    assert check(both.replace(ReservedCode2=""), signer, b"pixels") is SignatureStatus.VALID
    # swapping the generator's signature breaks the platform's
    other = sign(LABEL.replace(ProduceID="FFFFFFFFFFFFFFFF"), signer, b"pixels")
    assert check(both.replace(ReservedCode1=other.ReservedCode1), signer, b"pixels") is (
        SignatureStatus.INVALID
    )


def test_untrusted_key_is_invalid_and_foreign_data_absent(signer: Signer) -> None:
    signed = sign(LABEL, signer, b"pixels")
    digest = payload_digest([b"pixels"], signer.digest_algorithm)
    checks = verify_label(signed, "jpeg", {signer.digest_algorithm: digest}, KeyRing())
    assert checks[0].status is SignatureStatus.INVALID and "not trusted" in checks[0].detail
    foreign = LABEL.replace(ReservedCode1="some-vendor-hash")
    assert summarize(verify_label(foreign, "jpeg", {}, KeyRing())) is SignatureStatus.ABSENT


def test_keys_from_settings_and_trusted_file(tmp_path: Path) -> None:
    private, public = generate_key("sm2")
    other_private, other_public = generate_key("ed25519")
    del public
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[keys.partner]\nalgorithm = "ed25519"\npublic_key = "{other_public}"\n')
    settings = Settings(signing_algorithm="sm2", signing_key=private, trusted_keys_file=str(keys))
    ring = KeyRing.from_settings(settings)
    assert len(ring) == 2
    assert ring.get(Signer("ed25519", other_private).public.kid) is not None
    assert ring.get(Signer("sm2", private).public.kid) is not None


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (Settings(signing_algorithm="ed25519"), ConfigError),
        (Settings(signing_algorithm="ed25519", signing_key="not a pem"), SignatureError),
        (Settings(signing_algorithm="sm2", signing_key="zz"), SignatureError),
        (Settings(signing_algorithm="sm2", signing_key="0" * 64), SignatureError),
        (Settings(signing_algorithm="ed25519", signing_key_file="/nonexistent"), ConfigError),
    ],
)
def test_bad_keys_are_clear_errors(settings: Settings, error: type[Exception]) -> None:
    with pytest.raises(error):
        KeyRing.from_settings(settings)


def test_sm3_digest_matches_the_standard_vector() -> None:
    # GB/T 32905-2016 example 1: SM3("abc")
    assert payload_digest([b"a", b"bc"], "SM3") == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
