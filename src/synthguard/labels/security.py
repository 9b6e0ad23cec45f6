"""Protecting the label: ``ReservedCode1`` (generator) and ``ReservedCode2`` (platform) signatures.

Each signature binds the label's members to a digest of the media payload (what the container's
labeler yields from ``payload``: coded pixels, audio frames, ``mdat``; never the metadata), so a label
copied onto other content, or edited, reads as invalid.

Format (fits the label's safe character set ``[0-9A-Za-z._:-]``)::

    SG1.<ALG>.<KID>.<DIGEST>.<SIGNATURE>

``ALG`` is ``ED25519`` or ``SM2`` (SM2 with SM3, the default user id ``1234567812345678``, as
TC260-PG-202511A names); ``KID`` is the first 16 hex digits of SHA-256 over the raw public key
(Ed25519: 32 bytes; SM2: the 64-byte X||Y point); ``DIGEST`` is ``SHA256`` (with Ed25519) or ``SM3``
(with SM2); ``SIGNATURE`` is base64url without padding (Ed25519: 64 bytes; SM2: r||s, 64 bytes).

The signed message is UTF-8 text, lines joined by ``\\n``::

    SG1
    RC1                      (or RC2)
    <container value>        e.g. "jpeg"
    <DIGEST>:<payload digest, lower-case hex>
    <canonical label JSON>   with ReservedCode1 and everything after it emptied for RC1;
                             with only ReservedCode2 emptied for RC2

so the generator's signature covers Label, ContentProducer and ProduceID, and the platform's covers
every member including the generator's signature.

Relation to the guide's ``SecurityData`` object (TC260-PG-202511A, exact nesting not seen: verify):
``Type`` = ``SG1``, ``Version`` = ``1``, the algorithm is SM3withSM2 when ``ALG`` is ``SM2``,
``Bindings`` = the payload digest, ``PubSD`` = the key id. A JSON ``SecurityData`` cannot be written
into the reserved members as is (braces and quotes are outside the safe set), so this compact form
carries the same fields; a value in another format reads as ``absent`` with a detail saying so.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from synthguard.aigc import AigcLabel
from synthguard.config import Settings
from synthguard.errors import ConfigError, SignatureError

__all__ = [
    "KeyRing",
    "SignatureCheck",
    "SignatureStatus",
    "Signer",
    "Slot",
    "generate_key",
    "has_signature",
    "load_signer",
    "payload_digest",
    "summarize",
    "verify_label",
]

SCHEME: Final = "SG1"


class SignatureStatus(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"
    #: Only when the caller asked not to verify (``detect --no-verify``).
    UNCHECKED = "unchecked"


class Slot(enum.Enum):
    GENERATOR = "RC1"
    PLATFORM = "RC2"


_DIGEST_FOR: Final = {"ED25519": "SHA256", "SM2": "SM3"}


def payload_digest(chunks: Iterable[bytes], algorithm: str) -> str:
    """Lower-case hex digest of the payload chunks with ``SHA256`` or ``SM3``."""
    if algorithm == "SHA256":
        sha = hashlib.sha256()
        for chunk in chunks:
            sha.update(chunk)
        return sha.hexdigest()
    if algorithm == "SM3":
        sm3 = hashes.Hash(hashes.SM3())
        for chunk in chunks:
            sm3.update(chunk)
        return sm3.finalize().hex()
    raise SignatureError(f"unknown digest algorithm {algorithm!r}")


def _message(label: AigcLabel, slot: Slot, container: str, digest_alg: str, digest: str) -> bytes:
    if slot is Slot.GENERATOR:
        covered = (
            label.replace(ReservedCode1="", ContentPropagator="", PropagateID="", ReservedCode2="")
            if label.ContentProducer
            else None
        )
        if covered is None:
            raise SignatureError("a generator signature needs ContentProducer and ProduceID")
    else:
        covered = label.replace(ReservedCode2="")
    return "\n".join((SCHEME, slot.value, container, f"{digest_alg}:{digest}", covered.to_json())).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _kid(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


class _PublicKey(Protocol):
    @property
    def algorithm(self) -> str: ...

    @property
    def kid(self) -> str: ...

    def verify(self, signature: bytes, message: bytes) -> bool: ...


@dataclasses.dataclass(frozen=True)
class _Ed25519Public:
    key: Ed25519PublicKey
    algorithm: str = "ED25519"

    @property
    def kid(self) -> str:
        return _kid(self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclasses.dataclass(frozen=True)
class _Sm2Public:
    point_hex: str  # 128 hex digits, X||Y
    algorithm: str = "SM2"

    @property
    def kid(self) -> str:
        return _kid(bytes.fromhex(self.point_hex))

    def verify(self, signature: bytes, message: bytes) -> bool:
        from gmssl import sm2

        if len(signature) != 64:
            return False
        crypt = sm2.CryptSM2(private_key="", public_key=self.point_hex)
        try:
            return bool(crypt.verify_with_sm3(signature.hex(), message))
        except (ValueError, ZeroDivisionError):
            return False


def _load_public(algorithm: str, text: str) -> _PublicKey:
    algorithm = algorithm.upper()
    text = text.strip()
    if algorithm == "ED25519":
        try:
            if text.startswith("-----"):
                key = serialization.load_pem_public_key(text.encode())
            else:
                key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
        except ValueError as exc:
            raise SignatureError(f"cannot load Ed25519 public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError("the public key is not an Ed25519 key")
        return _Ed25519Public(key)
    if algorithm == "SM2":
        hex_text = text.lower().removeprefix("04") if len(text) == 130 else text.lower()
        if len(hex_text) != 128 or any(c not in "0123456789abcdef" for c in hex_text):
            raise SignatureError("an SM2 public key is 128 hex digits (X||Y), optionally with 04")
        return _Sm2Public(hex_text)
    raise SignatureError(f"unknown signature algorithm {algorithm!r}")


class Signer:
    """A private key that signs labels; ``public`` is its verification half."""

    def __init__(self, algorithm: str, private_text: str) -> None:
        self.algorithm = algorithm.upper()
        text = private_text.strip()
        if self.algorithm == "ED25519":
            try:
                key = serialization.load_pem_private_key(text.encode(), password=None)
            except ValueError as exc:
                raise SignatureError(f"cannot load Ed25519 private key (PEM): {exc}") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise SignatureError("the signing key is not an Ed25519 key")
            self._ed = key
            self.public: _PublicKey = _Ed25519Public(key.public_key())
        elif self.algorithm == "SM2":
            from gmssl import sm2

            if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise SignatureError("an SM2 private key is 64 hex digits")
            d = int(text, 16)
            if not 0 < d < int(sm2.default_ecc_table["n"], 16) - 1:
                raise SignatureError("SM2 private key out of range")
            probe = sm2.CryptSM2(private_key=text, public_key="")
            point = probe._kg(d, sm2.default_ecc_table["g"])
            self._sm2 = sm2.CryptSM2(private_key=text.lower(), public_key=point)
            self.public = _Sm2Public(point)
        else:
            raise SignatureError(f"unknown signature algorithm {algorithm!r}")

    @property
    def digest_algorithm(self) -> str:
        return _DIGEST_FOR[self.algorithm]

    def sign(self, label: AigcLabel, slot: Slot, container: str, digest: str) -> str:
        message = _message(label, slot, container, self.digest_algorithm, digest)
        if self.algorithm == "ED25519":
            signature = self._ed.sign(message)
        else:
            signature = bytes.fromhex(self._sm2.sign_with_sm3(message))
        return ".".join((SCHEME, self.algorithm, self.public.kid, self.digest_algorithm, _b64(signature)))


class KeyRing:
    """Public keys that detection trusts, by key id."""

    def __init__(self, keys: Iterable[_PublicKey] = ()) -> None:
        self._keys = {key.kid: key for key in keys}

    def add(self, key: _PublicKey) -> None:
        self._keys[key.kid] = key

    def get(self, kid: str) -> _PublicKey | None:
        return self._keys.get(kid)

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        ring = cls()
        signer = load_signer(settings)
        if signer is not None:
            ring.add(signer.public)
        if settings.trusted_keys_file:
            path = Path(settings.trusted_keys_file)
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read trusted keys file {path}: {exc}") from exc
            for name, entry in data.get("keys", {}).items():
                if not isinstance(entry, dict) or not {"algorithm", "public_key"} <= set(entry):
                    raise ConfigError(f"{path}: key {name!r} needs algorithm and public_key")
                ring.add(_load_public(str(entry["algorithm"]), str(entry["public_key"])))
        return ring


def load_signer(settings: Settings) -> Signer | None:
    """The configured signer, or ``None`` when signing is not configured."""
    if not settings.signing_algorithm:
        return None
    text = settings.signing_key_text()
    if not text:
        raise ConfigError(
            "signing_algorithm is set but no signing key is configured "
            "(SYNTHGUARD_SIGNING_KEY or SYNTHGUARD_SIGNING_KEY_FILE)"
        )
    return Signer(settings.signing_algorithm, text)


def generate_key(algorithm: str) -> tuple[str, str]:
    """A new (private, public) key pair as text, for ``synthguard keys generate``."""
    algorithm = algorithm.upper()
    if algorithm == "ED25519":
        private = Ed25519PrivateKey.generate()
        private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_hex = (
            private.public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            .hex()
        )
        return private_pem, public_hex
    if algorithm == "SM2":
        import secrets

        from gmssl import sm2

        n = int(sm2.default_ecc_table["n"], 16)
        d = secrets.randbelow(n - 2) + 1
        private_hex = f"{d:064x}"
        return private_hex, _sm2_point(private_hex)
    raise SignatureError(f"unknown signature algorithm {algorithm!r}")


def _sm2_point(private_hex: str) -> str:
    public = Signer("SM2", private_hex).public
    assert isinstance(public, _Sm2Public)
    return public.point_hex


@dataclasses.dataclass(frozen=True, slots=True)
class SignatureCheck:
    slot: Slot
    status: SignatureStatus
    detail: str = ""


def parse_reserved(value: str) -> tuple[str, str, str, bytes] | None:
    """``(algorithm, kid, digest_alg, signature)`` of an SG1 value, or ``None`` if not SG1."""
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != SCHEME:
        return None
    _, algorithm, kid, digest_alg, sig = parts
    try:
        signature = _unb64(sig)
    except ValueError:
        return None
    return algorithm, kid, digest_alg, signature


def verify_label(
    label: AigcLabel,
    container: str,
    digest_for: Mapping[str, str] | Callable[[str], str],
    keys: KeyRing,
) -> list[SignatureCheck]:
    """Check both reserved members against ``keys``.

    ``digest_for`` gives the payload digest for a digest algorithm: a mapping, or a function that is
    called only once a signature's key is known to be trusted (so an untrusted or foreign signature
    never costs a pass over the payload)."""
    cache: dict[str, str] = {}

    def digest(algorithm: str) -> str | None:
        if isinstance(digest_for, Mapping):
            return digest_for.get(algorithm)
        if algorithm not in cache:
            cache[algorithm] = digest_for(algorithm)
        return cache[algorithm]

    checks = []
    for slot, value in (
        (Slot.GENERATOR, label.ReservedCode1),
        (Slot.PLATFORM, label.ReservedCode2),
    ):
        if not value:
            continue
        parsed = parse_reserved(value)
        if parsed is None:
            checks.append(
                SignatureCheck(slot, SignatureStatus.ABSENT, "reserved member holds data in another format")
            )
            continue
        algorithm, kid, digest_alg, signature = parsed
        key = keys.get(kid)
        if key is None or key.algorithm != algorithm:
            checks.append(
                SignatureCheck(slot, SignatureStatus.INVALID, f"key {kid} ({algorithm}) is not trusted")
            )
            continue
        payload = digest(digest_alg) if _DIGEST_FOR.get(algorithm) == digest_alg else None
        if payload is None:
            checks.append(
                SignatureCheck(
                    slot, SignatureStatus.INVALID, f"digest {digest_alg} does not go with {algorithm}"
                )
            )
            continue
        message = _message(label, slot, container, digest_alg, payload)
        ok = key.verify(signature, message)
        checks.append(
            SignatureCheck(
                slot,
                SignatureStatus.VALID if ok else SignatureStatus.INVALID,
                "" if ok else "signature does not match this label and this content",
            )
        )
    return checks


def has_signature(label: AigcLabel) -> bool:
    """Whether a reserved member holds an SG1 signature."""
    return any(parse_reserved(v) for v in (label.ReservedCode1, label.ReservedCode2) if v)


def summarize(checks: list[SignatureCheck]) -> SignatureStatus:
    """valid if every SG1 signature present verifies; invalid if any fails; absent if none."""
    if any(c.status is SignatureStatus.UNCHECKED for c in checks):
        return SignatureStatus.UNCHECKED
    statuses = [c.status for c in checks if c.status is not SignatureStatus.ABSENT]
    if not statuses:
        return SignatureStatus.ABSENT
    if all(s is SignatureStatus.VALID for s in statuses):
        return SignatureStatus.VALID
    return SignatureStatus.INVALID
