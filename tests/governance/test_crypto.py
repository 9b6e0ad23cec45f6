"""Identity encryption: round trip, nonce per value, binding to row and field, wrong keys, masking."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthguard.config import Settings
from synthguard.errors import ConfigError, DecryptionError
from synthguard.governance.crypto import (
    IdentityCipher,
    generate_keys,
    mask,
    mask_mobile,
    mask_name,
    mask_number,
)

NUMBER = "11010519491231002X"


def _cipher(keys: tuple[str, str] | None = None) -> IdentityCipher:
    enc, mac = keys or generate_keys()
    return IdentityCipher.from_settings(Settings(identity_encryption_key=enc, identity_hash_key=mac))


def test_round_trip_and_a_fresh_nonce_for_every_value() -> None:
    cipher = _cipher()
    blobs = {cipher.encrypt(NUMBER, user_ref="u1", field="resident_id") for _ in range(200)}
    assert len(blobs) == 200
    nonces = {blob[5:17] for blob in blobs}
    assert len(nonces) == 200
    for blob in blobs:
        assert NUMBER.encode() not in blob
        assert cipher.decrypt(blob, user_ref="u1", field="resident_id") == NUMBER


def test_ciphertext_is_bound_to_its_user_and_field() -> None:
    cipher = _cipher()
    blob = cipher.encrypt(NUMBER, user_ref="u1", field="resident_id")
    with pytest.raises(DecryptionError, match="another record"):
        cipher.decrypt(blob, user_ref="u2", field="resident_id")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, user_ref="u1", field="uscc")


def test_a_wrong_key_is_named_as_such() -> None:
    blob = _cipher().encrypt(NUMBER, user_ref="u1", field="resident_id")
    other = _cipher()
    with pytest.raises(DecryptionError, match=r"sealed with key .* configured"):
        other.decrypt(blob, user_ref="u1", field="resident_id")


def test_an_edited_ciphertext_fails_authentication() -> None:
    cipher = _cipher()
    blob = bytearray(cipher.encrypt(NUMBER, user_ref="u1", field="resident_id"))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError, match="altered"):
        cipher.decrypt(bytes(blob), user_ref="u1", field="resident_id")
    with pytest.raises(DecryptionError, match="format"):
        cipher.decrypt(b"\x02" + bytes(blob[1:]), user_ref="u1", field="resident_id")
    with pytest.raises(DecryptionError, match="format"):
        cipher.decrypt(b"\x01abc", user_ref="u1", field="resident_id")


def test_lookup_hash_is_keyed_and_per_field() -> None:
    keys = generate_keys()
    one, same = _cipher(keys), _cipher(keys)
    assert one.lookup_hash(NUMBER, field="resident_id") == same.lookup_hash(NUMBER, field="resident_id")
    assert one.lookup_hash(NUMBER, field="resident_id") != one.lookup_hash(NUMBER, field="uscc")
    assert one.lookup_hash(NUMBER, field="resident_id") != _cipher().lookup_hash(NUMBER, field="resident_id")
    assert len(one.lookup_hash(NUMBER, field="resident_id")) == 64


def test_missing_or_malformed_keys_are_config_errors() -> None:
    enc, mac = generate_keys()
    with pytest.raises(ConfigError, match="identity_encryption_key is not set"):
        IdentityCipher.from_settings(Settings(identity_hash_key=mac))
    with pytest.raises(ConfigError, match="identity_hash_key is not set"):
        IdentityCipher.from_settings(Settings(identity_encryption_key=enc))
    with pytest.raises(ConfigError, match="base64"):
        IdentityCipher.from_settings(Settings(identity_encryption_key="not base64!", identity_hash_key=mac))
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(ConfigError, match="32 bytes"):
        IdentityCipher.from_settings(Settings(identity_encryption_key=short, identity_hash_key=mac))
    with pytest.raises(ConfigError, match="at least 32"):
        IdentityCipher.from_settings(Settings(identity_encryption_key=enc, identity_hash_key=short))
    with pytest.raises(ConfigError, match="differ"):
        IdentityCipher.from_settings(Settings(identity_encryption_key=enc, identity_hash_key=enc))


def test_masking() -> None:
    assert mask_number("110101199003071234") == "110101********1234"
    assert mask_number("91110102MACQD9K640") == "911101********K640"
    assert mask_mobile("+8613812345678") == "+86 138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("北京某某科技有限公司") == "北京********"
    assert mask("abc", keep_start=2, keep_end=2) == "***"
    assert mask("", keep_start=1, keep_end=1) == ""


@given(st.text(max_size=40), st.integers(0, 8), st.integers(0, 8))
def test_masking_never_shows_more_than_asked(value: str, start: int, end: int) -> None:
    masked = mask(value, keep_start=start, keep_end=end)
    assert len(masked) == len(value)
    shown = sum(1 for a, b in zip(masked, value, strict=True) if a == b and a != "*")
    assert shown <= start + end


def test_repr_hides_the_keys() -> None:
    enc, mac = generate_keys()
    settings = Settings(identity_encryption_key=enc, identity_hash_key=mac)
    assert enc not in repr(settings) and mac not in repr(settings)
