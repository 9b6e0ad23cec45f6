"""The text watermark: the ``ProduceID``, encrypted under the key, in invisible variation selectors.

Unicode has 256 variation selectors (U+FE00..U+FE0F and U+E0100..U+E01EF). After an ordinary
letter they select no glyph variant, so renderers show nothing; they are plain characters of the
text, so copy and paste, HTML escaping and JSON (with or without ``ensure_ascii``) carry them, and
Unicode normalisation (NFC, NFD, NFKC, NFKD) keeps them. One selector is one byte, so a mark is a
*packet* of 16 selectors: one AES-128 block holding the 64-bit ``ProduceID`` and a 64-bit tag
(truncated HMAC-SHA256 of the ID), encrypted under a key derived from the watermark secret. The
packet is attached after a letter at the start and again every ``every`` characters (at a word end
where there is one), so a copied paragraph or sentence still carries it.

Detection reads every run of 16 or more selectors, decrypts each 16-selector window and keeps those
whose tag verifies. Without this key a window decrypts to a random block, whose tag matches with
probability 2^-64; with ``n`` windows tried the false-positive bound is ``n * 2^-64``, whatever the
text. Hand-written because the few libraries that hide data in text do not use a key.

Fragility (also in ``docs/watermarks.md``): anything that deletes the selectors deletes the mark:
NFKC_Casefold (``NFKC_CF``), "remove invisible/format/non-spacing characters" cleaners (categories
Mn, Cf, Default_Ignorable_Code_Point), ASCII-only or legacy-encoding round trips, OCR or retyping.
Editing inside a packet breaks that copy of it (the others still count).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections import Counter
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from synthguard.aigc import ProduceID
from synthguard.errors import InvalidLabelError, UsageError
from synthguard.watermark.base import WatermarkDetection, derive_key

__all__ = ["SCHEME", "detect_text", "embed_text"]

SCHEME: Final = "synthguard-text-vs-v1"
PACKET_CHARS: Final = 16
TAG_BITS: Final = 64
#: Characters of text between two copies of the packet, by default.
DEFAULT_EVERY: Final = 120
#: Windows of 16 selectors decrypted at most per text (a bound on work for hostile input).
MAX_WINDOWS: Final = 100_000

_SELECTOR_RUN: Final = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{16,}")


def _to_selector(byte: int) -> str:
    return chr(0xFE00 + byte) if byte < 16 else chr(0xE0100 + byte - 16)


def _from_selector(char: str) -> int:
    code = ord(char)
    return code - 0xFE00 if code <= 0xFE0F else code - 0xE0100 + 16


def _cipher(secret: bytes) -> Cipher[modes.ECB]:
    # ECB on exactly one block is a keyed pseudo-random permutation, which is all a packet needs.
    return Cipher(algorithms.AES(derive_key(secret, "text-packet-v1")[:16]), modes.ECB())


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(derive_key(secret, "text-tag-v1"), payload, hashlib.sha256).digest()[: TAG_BITS // 8]


def _packet(secret: bytes, produce_id: str) -> str:
    payload = ProduceID.to_int(produce_id).to_bytes(8, "big")
    encryptor = _cipher(secret).encryptor()
    block = encryptor.update(payload + _tag(secret, payload)) + encryptor.finalize()
    return "".join(_to_selector(b) for b in block)


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise UsageError("the watermark secret must be at least 16 bytes")


def _can_carry(text: str, index: int) -> bool:
    """A packet may follow ``text[index]``: a letter or digit not followed by a mark, a selector,
    a joiner or another part of its grapheme (so emoji sequences and combining marks stay intact)."""
    if not unicodedata.category(text[index]).startswith(("L", "N")):
        return False
    following = text[index + 1] if index + 1 < len(text) else ""
    return not following or not (
        unicodedata.category(following) in {"Mn", "Mc", "Me", "Cf"} or following in "\u200d\u200c"
    )


def embed_text(text: str, produce_id: str, secret: bytes, *, every: int = DEFAULT_EVERY) -> str:
    """``text`` with the encrypted ``produce_id`` packet after its first letter and then about every
    ``every`` characters (after the last letter of a word where one ends nearby).

    The visible characters and their order are unchanged: removing every variation selector that was
    added gives back ``text``. Marks already in the text are kept. Raises ``UsageError`` for an
    invalid ProduceID or secret, ``every`` below 16, or a text without a letter or digit to carry it.
    """
    _check_secret(secret)
    if every < PACKET_CHARS:
        raise UsageError(f"every must be at least {PACKET_CHARS}, got {every}")
    try:
        packet = _packet(secret, produce_id)
    except InvalidLabelError as exc:
        raise UsageError(str(exc)) from exc
    places: list[int] = []
    next_at = 0
    for index in range(len(text)):
        if index < next_at or not _can_carry(text, index):
            continue
        # Prefer the end of a word: a letter followed by a space, punctuation or the end.
        at_word_end = index + 1 >= len(text) or not text[index + 1].isalnum()
        if not at_word_end and index < next_at + every // 4:
            continue
        places.append(index)
        next_at = index + every
    if not places:
        # No word end early enough (a short text in a script without spaces): the first letter.
        places = [index for index in range(len(text)) if _can_carry(text, index)][:1]
    if not places:
        raise UsageError("the text has no letter or digit to attach the watermark to")
    pieces: list[str] = []
    previous = 0
    for index in places:
        pieces.append(text[previous : index + 1])
        pieces.append(packet)
        previous = index + 1
    pieces.append(text[previous:])
    return "".join(pieces)


def detect_text(text: str, secret: bytes, threshold: float = 1e-6) -> WatermarkDetection:
    """Find packets made with ``secret`` in ``text``.

    ``p_value`` is ``windows tried x 2^-64`` (capped at 1) when a tag verified, else 1. ``details``
    gives the number of verified packets, the windows tried, and every ProduceID found (a text can be
    built from pieces of several marked texts; ``produce_id`` is the one found most often). At most
    ``MAX_WINDOWS`` windows are tried (``details["truncated"]`` says when the text held more).
    """
    _check_secret(secret)
    if not 0.0 < threshold <= 1.0:
        raise UsageError(f"threshold must be in (0, 1], got {threshold}")
    decryptor = _cipher(secret).decryptor()
    found: Counter[str] = Counter()
    tried = 0
    truncated = False
    for run in _SELECTOR_RUN.finditer(text):
        selectors = run.group()
        for start in range(len(selectors) - PACKET_CHARS + 1):
            if tried >= MAX_WINDOWS:  # hostile input: a megabyte of selectors
                truncated = True
                break
            tried += 1
            block = bytes(_from_selector(c) for c in selectors[start : start + PACKET_CHARS])
            plain = decryptor.update(block)
            payload, tag = plain[:8], plain[8:]
            if hmac.compare_digest(_tag(secret, payload), tag):
                found[ProduceID.from_int(int.from_bytes(payload, "big"))] += 1
    if not found:
        details: dict[str, object] = {"windows_tried": tried, "packets": 0}
        if truncated:
            details["truncated"] = True
        return WatermarkDetection(False, None, 1.0, threshold, SCHEME, details)
    p_value = min(1.0, tried * 2.0**-TAG_BITS)
    best = found.most_common(1)[0][0]
    matched = p_value < threshold
    details = {"windows_tried": tried, "packets": sum(found.values()), "produce_ids": sorted(found)}
    if truncated:
        details["truncated"] = True
    return WatermarkDetection(matched, best if matched else None, p_value, threshold, SCHEME, details)
