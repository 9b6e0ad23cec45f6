"""The GB 45438-2025 Annex E implicit label: ``AigcLabel``, ``ProviderCode`` and ``ProduceID``.

An implicit metadata label is one property named ``AIGC`` whose value is a JSON object of seven string
members, in the standard's order (``MEMBERS``). On disk it is written compactly, flat, with all seven
members present (empty strings for what is not filled), for example::

    {"Label":"1","ContentProducer":"001191110102MACQD9K64010000","ProduceID":"3F2A9C00D1E4B7A5",
     "ReservedCode1":"","ContentPropagator":"","PropagateID":"","ReservedCode2":""}

Readers also accept the wrapped form ``{"AIGC": {...}}`` and missing optional members.

Two levels of checking: ``AigcLabel.parse`` accepts what the standard allows (printable ASCII values),
so that labels written by others are read; ``AigcLabel.validate_for_writing`` applies the stricter set
that every reader is known to handle (``settings.write_value_pattern``). Both character sets are kept in
``config.py`` because the exact range is marked (verify) in the spec.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from synthguard.config import LabelRules
from synthguard.errors import InvalidLabelError, InvalidProviderCodeError

__all__ = ["MEMBERS", "AigcLabel", "LabelValue", "ProduceID", "ProviderCode"]

#: The seven members of the label, in the order GB 45438 Annex E gives them.
MEMBERS: Final = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)

#: Members a generator must fill.
REQUIRED: Final = ("Label", "ContentProducer", "ProduceID")

#: A label JSON text larger than this is hostile or absurd; refused before parsing.
MAX_LABEL_JSON: Final = 64 * 1024


class LabelValue:
    """The values of the ``Label`` member."""

    AI_GENERATED: Final = "1"
    POSSIBLY_AI_GENERATED: Final = "2"
    SUSPECTED_AI_GENERATED: Final = "3"
    ALL: Final = ("1", "2", "3")


@dataclasses.dataclass(frozen=True, slots=True)
class AigcLabel:
    """One AIGC implicit label: seven string members, empty where not filled.

    >>> label = AigcLabel(Label="1", ContentProducer="001191110102MACQD9K64010000",
    ...                   ProduceID="3F2A9C00D1E4B7A5")
    >>> AigcLabel.parse(label.to_json()) == label
    True
    """

    Label: str
    ContentProducer: str
    ProduceID: str
    ReservedCode1: str = ""
    ContentPropagator: str = ""
    PropagateID: str = ""
    ReservedCode2: str = ""

    rules: ClassVar[LabelRules] = LabelRules()

    def __post_init__(self) -> None:
        for name in MEMBERS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InvalidLabelError(f"member {name} must be a string, got {type(value).__name__}")
            if not self.rules.read_value_re.fullmatch(value):
                raise InvalidLabelError(
                    f"member {name} has characters outside printable ASCII: {value[:40]!r}"
                )
        if self.Label not in LabelValue.ALL:
            raise InvalidLabelError(f'Label must be "1", "2" or "3", got {self.Label!r}')
        producer = bool(self.ContentProducer and self.ProduceID)
        platform = bool(self.ContentPropagator and self.PropagateID)
        if not producer and not platform:
            # a platform writing Label 2 or 3 on unlabeled content knows no producer
            missing = [n for n in REQUIRED if not getattr(self, n)]
            raise InvalidLabelError(
                f"member {missing[0]} is required and is empty (only a platform's label, with "
                "ContentPropagator and PropagateID, may leave the producer members empty)"
            )

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, str]:
        """The seven members, in the standard's order."""
        return {name: getattr(self, name) for name in MEMBERS}

    def to_json(self) -> str:
        """Compact canonical JSON: all seven members, in order, no spaces, ASCII only."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AigcLabel:
        """Build from a mapping in the flat or the wrapped ``{"AIGC": {...}}`` form."""
        if set(data) == {"AIGC"} and isinstance(data["AIGC"], Mapping):
            data = data["AIGC"]
        unknown = sorted(set(data) - set(MEMBERS))
        if unknown:
            raise InvalidLabelError(f"unknown members: {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name in MEMBERS:
            value = data.get(name, "")
            if isinstance(value, int) and not isinstance(value, bool) and name == "Label":
                value = str(value)  # seen in the wild: "Label": 1
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise InvalidLabelError(f"member {name} must be a string, got {type(value).__name__}")
            values[name] = value
        return cls(**values)

    @classmethod
    def parse(cls, text: str | bytes) -> AigcLabel:
        """Parse the JSON text of a label (flat or wrapped). Raises ``InvalidLabelError``."""
        if len(text) > MAX_LABEL_JSON:
            raise InvalidLabelError(f"label text is {len(text)} bytes, more than {MAX_LABEL_JSON}")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidLabelError("label text is not UTF-8") from exc
        text = text.strip().lstrip("\ufeff").rstrip("\x00")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InvalidLabelError(f"label is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidLabelError(f"label JSON must be an object, got {type(data).__name__}")
        return cls.from_mapping(data)

    # -- writing rules ------------------------------------------------------------------------

    def validate_for_writing(self) -> AigcLabel:
        """Check the stricter character set used for writing; returns ``self`` for chaining."""
        for name in MEMBERS:
            value = getattr(self, name)
            if not self.rules.write_value_re.fullmatch(value):
                bad = sorted({c for c in value if not self.rules.write_value_re.fullmatch(c)})
                raise InvalidLabelError(
                    f"member {name} has characters that are not written: {''.join(bad)!r} "
                    f"(allowed: {self.rules.write_value_pattern})"
                )
            if len(value) > self.rules.max_value_length:
                raise InvalidLabelError(
                    f"member {name} is {len(value)} characters, more than {self.rules.max_value_length}"
                )
        return self

    def replace(self, **changes: str) -> AigcLabel:
        """A copy with some members changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def producer_members(self) -> dict[str, str]:
        """What the generator wrote and a platform must keep."""
        return {name: getattr(self, name) for name in MEMBERS[:4]}


class ProduceID:
    """A content's unique 64-bit number, written as 16 upper-case hex digits.

    The watermark carries exactly these 64 bits, so the text form is fixed: ``%016X``.
    """

    PATTERN: Final = re.compile(r"[0-9A-F]{16}")

    @staticmethod
    def new() -> str:
        """A fresh random 64-bit identifier (never zero); the store enforces uniqueness."""
        value = 0
        while value == 0:
            value = secrets.randbits(64)
        return f"{value:016X}"

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return bool(cls.PATTERN.fullmatch(text))

    @classmethod
    def to_int(cls, text: str) -> int:
        if not cls.is_valid(text):
            raise InvalidLabelError(f"ProduceID must be 16 upper-case hex digits, got {text!r}")
        return int(text, 16)

    @staticmethod
    def from_int(value: int) -> str:
        if not 0 <= value < 1 << 64:
            raise InvalidLabelError(f"ProduceID must fit in 64 bits, got {value}")
        return f"{value:016X}"


# The 31 characters of GB 32100-2015 (no I, O, S, V, Z) and the weights of its check character.
_USCC_CHARSET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714 organisation code: eight body characters and their weights.
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)


def _uscc_check_char(body: str) -> str:
    total = sum(_USCC_CHARSET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARSET[(31 - total % 31) % 31]


def _org_code_check_char(body: str) -> str:
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderCode:
    """A service provider code per TC260-PG-20252A (27 characters).

    ``00`` + ``1`` (organisation) + ``1`` (bound by a unified social credit code) + the 18-character
    USCC + 5 service characters (``00000``, or ``1`` generation / ``2`` propagation followed by a
    4-character model or application code).

    >>> ProviderCode.parse("001191110102MACQD9K64010000").uscc
    '91110102MACQD9K640'
    """

    code: str

    LENGTH: ClassVar[int] = 27

    @classmethod
    def parse(cls, text: str) -> ProviderCode:
        code = text.strip()
        if len(code) != cls.LENGTH:
            raise InvalidProviderCodeError(
                f"provider code must be {cls.LENGTH} characters, got {len(code)}: {code!r}"
            )
        if not re.fullmatch(r"[0-9A-Z]{27}", code):
            raise InvalidProviderCodeError(
                f"provider code holds only digits and upper-case letters: {code!r}"
            )
        if code[:2] != "00":
            raise InvalidProviderCodeError(f"provider code starts with 00, got {code[:2]!r}")
        if code[2:4] != "11":
            raise InvalidProviderCodeError(
                f"characters 3-4 must be 11 (organisation bound by its USCC), got {code[2:4]!r}"
            )
        validate_uscc(code[4:22])
        service = code[22:]
        if service != "00000" and service[0] not in "12":
            raise InvalidProviderCodeError(
                f"service characters must be 00000, or 1 (generation) or 2 (propagation) and a "
                f"4-character code, got {service!r}"
            )
        return cls(code)

    @property
    def uscc(self) -> str:
        return self.code[4:22]

    @property
    def service(self) -> str:
        return self.code[22:]

    def __str__(self) -> str:
        return self.code


def validate_uscc(uscc: str) -> str:
    """Check an 18-character unified social credit code (GB 32100-2015); returns it.

    Positions 1-2 (registration authority and type) may be letters of the 31-character set;
    3-8 are the administrative division (digits); 9-17 the GB 11714 organisation code with its own
    check digit; 18 the MOD 31 check character over the first 17.
    """
    if len(uscc) != 18:
        raise InvalidProviderCodeError(f"USCC must be 18 characters, got {len(uscc)}: {uscc!r}")
    bad = sorted({c for c in uscc if c not in _USCC_CHARSET})
    if bad:
        raise InvalidProviderCodeError(
            f"USCC {uscc!r} has characters outside GB 32100's set: {''.join(bad)!r}"
        )
    if not uscc[2:8].isdigit():
        raise InvalidProviderCodeError(
            f"USCC {uscc!r}: characters 3-8 (administrative division) must be digits"
        )
    org = uscc[8:17]
    expected_org = _org_code_check_char(org[:8])
    if org[8] != expected_org:
        raise InvalidProviderCodeError(
            f"USCC {uscc!r}: organisation code {org} has check digit {org[8]}, expected {expected_org}"
        )
    expected = _uscc_check_char(uscc[:17])
    if uscc[17] != expected:
        raise InvalidProviderCodeError(f"USCC {uscc!r}: check character is {uscc[17]}, expected {expected}")
    return uscc
