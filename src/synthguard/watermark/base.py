"""What every watermark scheme shares: the detection result, key derivation and the payload.

A watermark carries the content's 64-bit ``ProduceID`` (Annex E), keyed by the secret
``watermark_key`` from configuration: without the key nothing is embedded or found. Each scheme
derives its own sub-keys with ``derive_key(secret, purpose)`` so that one configured secret never
feeds two schemes the same bits.

A detection is trusted only through its p-value: the probability, under the hypothesis that the
content carries no mark made with this key, of evidence at least as strong as what was observed (or
an upper bound on it). A match is declared only when ``p_value < threshold`` (setting
``watermark_p_threshold``, default 1e-6).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Any

from synthguard.aigc import ProduceID
from synthguard.config import Settings
from synthguard.errors import ConfigError

__all__ = ["WatermarkDetection", "derive_key", "payload_bits", "produce_id_from_bits", "watermark_secret"]

PAYLOAD_BITS = 64


@dataclasses.dataclass(frozen=True, slots=True)
class WatermarkDetection:
    """The outcome of looking for a watermark in one piece of content.

    ``found`` is true only when ``p_value < threshold``; ``produce_id`` is set only then. ``details``
    holds scheme-specific evidence (z-score, bit errors corrected, frames or windows that voted).
    """

    found: bool
    #: 16 upper-case hex digits (``ProduceID`` form), or None.
    produce_id: str | None
    p_value: float
    threshold: float
    scheme: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "produce_id": self.produce_id,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "scheme": self.scheme,
            "details": self.details,
        }


def watermark_secret(settings: Settings) -> bytes:
    """The configured watermark secret as bytes; ``ConfigError`` when none is configured."""
    if not settings.watermark_key:
        raise ConfigError("no watermark key: set SYNTHGUARD_WATERMARK_KEY (at least 16 characters)")
    if len(settings.watermark_key) < 16:
        raise ConfigError("watermark_key must be at least 16 characters")
    return settings.watermark_key.encode("utf-8")


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte sub-key for ``purpose`` (HMAC-SHA256 of the purpose under the secret)."""
    return hmac.new(secret, b"synthguard-watermark:" + purpose.encode("ascii"), hashlib.sha256).digest()


def payload_bits(produce_id: str) -> list[int]:
    """The 64 payload bits of ``produce_id`` (16 hex digits), most significant first."""
    value = ProduceID.to_int(produce_id)
    return [(value >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]


def produce_id_from_bits(bits: list[int]) -> str:
    """The inverse of ``payload_bits``."""
    if len(bits) != PAYLOAD_BITS:
        raise ValueError(f"expected {PAYLOAD_BITS} bits, got {len(bits)}")
    value = 0
    for bit in bits:
        value = (value << 1) | (bit & 1)
    return ProduceID.from_int(value)
