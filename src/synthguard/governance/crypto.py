"""Identity data at rest: AES-256-GCM encryption, keyed lookup hashes, and masking.

Identity numbers, real names and phone numbers are personal information (PIPL); the review spec asks
that they be stored encrypted or as keyed hashes, shown masked, and never logged. ``IdentityCipher``
does the first two with the ``cryptography`` package; ``mask`` the third.

Ciphertext layout (one ``bytes`` column)::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | AES-GCM ciphertext and tag

- a fresh random 96-bit nonce per value (never reused: 2**-32 collision bound stays far away at the
  volumes of one provider's users);
- the associated data binds the ciphertext to its row: ``synthguard-identity-v1``, the field name
  (``resident_id``, ``name``, ...) and the ``user_ref``, so a ciphertext copied onto another user or
  another field does not decrypt;
- the key id is the first 4 bytes of SHA-256 over the key: a wrong key is reported as such
  (``DecryptionError``), not as a corrupted value.

The lookup hash is HMAC-SHA256 under a separate key over the field name and the normalised value: it
finds "is this number already bound to someone?" without decrypting anything, and an attacker with
the database but without the key cannot test guesses (an ID number has only about 40 bits of entropy,
so a plain hash would be reversed by enumeration in minutes).

Keys come from settings (``identity_encryption_key``, ``identity_hash_key``), base64-encoded; a
missing or malformed key raises ``ConfigError`` when the feature is used, never a default key.
``generate_keys()`` makes a fresh pair.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from synthguard.config import Settings
from synthguard.errors import ConfigError, DecryptionError

__all__ = [
    "IdentityCipher",
    "generate_keys",
    "mask",
    "mask_mobile",
    "mask_name",
    "mask_number",
]

_VERSION: Final = b"\x01"
_KEY_ID_LENGTH: Final = 4
_NONCE_LENGTH: Final = 12
_HEADER_LENGTH: Final = 1 + _KEY_ID_LENGTH + _NONCE_LENGTH
_TAG_LENGTH: Final = 16
_AD_PREFIX: Final = b"synthguard-identity-v1"
#: Least length of the HMAC key (bytes): as long as the hash output.
MIN_HASH_KEY_BYTES: Final = 32


def _decode_key(name: str, text: str) -> bytes:
    if not text:
        raise ConfigError(
            f"setting {name} is not set: identity data cannot be stored without it "
            f"(make one with `synthguard governance keygen` or base64 of 32 random bytes)"
        )
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"setting {name} must be base64: {exc}") from exc


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"synthguard-key-id\x00" + key).digest()[:_KEY_ID_LENGTH]


class IdentityCipher:
    """Encrypts, decrypts and keyed-hashes identity values; see the module docstring for the format.

    >>> enc, mac = generate_keys()
    >>> cipher = IdentityCipher(base64.b64decode(enc), base64.b64decode(mac))
    >>> blob = cipher.encrypt("110101199003071234", user_ref="u1", field="resident_id")
    >>> cipher.decrypt(blob, user_ref="u1", field="resident_id")
    '110101199003071234'
    """

    def __init__(self, encryption_key: bytes, hash_key: bytes) -> None:
        if len(encryption_key) != 32:
            raise ConfigError(
                f"identity_encryption_key must decode to 32 bytes (AES-256), got {len(encryption_key)}"
            )
        if len(hash_key) < MIN_HASH_KEY_BYTES:
            raise ConfigError(
                f"identity_hash_key must decode to at least {MIN_HASH_KEY_BYTES} bytes, got {len(hash_key)}"
            )
        if hmac.compare_digest(encryption_key, hash_key[: len(encryption_key)]):
            raise ConfigError("identity_hash_key must differ from identity_encryption_key")
        self._aead = AESGCM(encryption_key)
        self._key_id = _key_id(encryption_key)
        self._hash_key = hash_key

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityCipher:
        """The cipher of the configured keys; ``ConfigError`` names a missing or malformed one."""
        return cls(
            _decode_key("identity_encryption_key", settings.identity_encryption_key),
            _decode_key("identity_hash_key", settings.identity_hash_key),
        )

    @property
    def key_id(self) -> str:
        """The encryption key's 4-byte id in hex (safe to show: it identifies, it does not reveal)."""
        return self._key_id.hex()

    @staticmethod
    def _associated_data(user_ref: str, field: str) -> bytes:
        return b"\x00".join((_AD_PREFIX, field.encode("utf-8"), user_ref.encode("utf-8")))

    def encrypt(self, value: str, *, user_ref: str, field: str) -> bytes:
        """Ciphertext of ``value``, bound to ``user_ref`` and ``field``; a fresh nonce every call."""
        nonce = os.urandom(_NONCE_LENGTH)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), self._associated_data(user_ref, field))
        return _VERSION + self._key_id + nonce + sealed

    def decrypt(self, blob: bytes, *, user_ref: str, field: str) -> str:
        """The value ``encrypt`` sealed; ``DecryptionError`` for another key, another row or an edit."""
        if len(blob) < _HEADER_LENGTH + _TAG_LENGTH or blob[:1] != _VERSION:
            raise DecryptionError(f"encrypted {field} is not in synthguard's format (version or length)")
        key_id = blob[1 : 1 + _KEY_ID_LENGTH]
        if key_id != self._key_id:
            raise DecryptionError(
                f"encrypted {field} was sealed with key {key_id.hex()}, but the configured "
                f"identity_encryption_key is {self.key_id}: configure the key it was written with"
            )
        nonce = blob[1 + _KEY_ID_LENGTH : _HEADER_LENGTH]
        try:
            plain = self._aead.decrypt(nonce, blob[_HEADER_LENGTH:], self._associated_data(user_ref, field))
        except InvalidTag as exc:
            raise DecryptionError(
                f"encrypted {field} fails authentication: it was altered or belongs to another record"
            ) from exc
        return plain.decode("utf-8")

    def lookup_hash(self, value: str, *, field: str) -> str:
        """HMAC-SHA256 (hex) of ``field`` and ``value``: equal values of one field hash equal."""
        message = field.encode("utf-8") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def code_hash(self, challenge_id: str, code: str) -> str:
        """HMAC-SHA256 (hex) of an SMS code, bound to its challenge."""
        return self.lookup_hash(f"{challenge_id}\x00{code}", field="sms_code")


def generate_keys() -> tuple[str, str]:
    """A fresh ``(identity_encryption_key, identity_hash_key)`` pair, base64 text for the settings."""
    return (
        base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        base64.b64encode(secrets.token_bytes(MIN_HASH_KEY_BYTES)).decode("ascii"),
    )


def mask(value: str, *, keep_start: int, keep_end: int, fill: str = "*") -> str:
    """``value`` with all but ``keep_start`` leading and ``keep_end`` trailing characters replaced.

    A value too short to keep that much shows nothing but the fill, so masking never reveals more of a
    short value than of a long one.

    >>> mask("110101199003071234", keep_start=6, keep_end=4)
    '110101********1234'
    """
    if len(value) <= keep_start + keep_end:
        return fill * len(value)
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + fill * hidden + (value[len(value) - keep_end :] if keep_end else "")


def mask_number(value: str) -> str:
    """An 18-character resident ID or USCC: region (6) and last 4 shown (``110101********1234``)."""
    return mask(value, keep_start=6, keep_end=4)


def mask_mobile(e164: str) -> str:
    """A CN mobile number in E.164: ``+86 138****5678``."""
    national = e164.removeprefix("+86")
    return (
        f"+86 {mask(national, keep_start=3, keep_end=4)}"
        if e164.startswith("+86")
        else mask(e164, keep_start=3, keep_end=2)
    )


def mask_name(name: str) -> str:
    """A name with only its first character shown (``张**``); organisations keep their first 2."""
    keep = 1 if len(name) <= 4 else 2
    return mask(name, keep_start=keep, keep_end=0)
