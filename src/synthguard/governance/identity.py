"""Real-name identity of the service's users (Deep Synthesis Provisions Art. 9).

Users who have not been authenticated get no information publishing service: ``can_publish``.

A subject is an end user of the AI service (a person or an organisation), keyed by the provider's own
user reference ``user_ref``. Its state::

    unverified ──submit──▶ pending ──verifier: match──▶ verified
         │                   │  └────verifier: mismatch──▶ rejected ──submit──▶ pending ...
         └──SMS code─────────┴────────────────────────────▶ verified
    any state ──override requested by one staff member, approved by another──▶ verified | rejected

Identifiers, each parsed from untrusted input by its own parser (a type is never guessed from which
checksum a number passes):

- resident ID number (GB 11643): ``parse_resident_id``. python-stdnum's ``cn.ric`` checks length,
  the MOD 11-2 check character and that the birth date exists. What it misses, added here: input
  typed with full-width digits, spaces or hyphens (normalised first); birth dates in the future or
  more than ``MAX_AGE_YEARS`` ago; the 15-digit first-generation form (void since 2013-01-01: refused
  unless ``identity_accept_legacy_resident_id``, then converted to 18 digits); and the area code.
  stdnum requires the area code to have been in use in the birth year, which rejects genuine numbers
  (codes are assigned when the number is issued, often years after birth, and counties are renamed),
  and it rejects the residence permits of Hong Kong, Macao and Taiwan residents (810000, 820000,
  830000, issued since 2018 to people born long before). Here a code is plausible when it is known
  and was still in use in or after the birth year, or is one of the three permit codes.
- unified social credit code (GB 32100): ``parse_uscc`` uses ``synthguard.aigc.validate_uscc``, which
  checks the MOD 31 check character AND the GB 11714 organisation code's own check digit and accepts
  letters in positions 1-2 (python-stdnum's ``cn.uscc`` does neither).
- mobile number: ``parse_mobile`` with phonenumbers (a valid mainland mobile number, E.164 out), then
  proven by an SMS code (``start_mobile_verification``, ``confirm_mobile_verification``).

Numbers and names are stored encrypted with a keyed lookup hash (``governance.crypto``) and shown only
masked; error messages carry the masked form, because messages end up in logs. A checksum failure on a
genuine number is handled by a reviewed manual override (``request_override`` carrying the number,
``decide_override`` by a second staff member).

Every change calls ``record_event`` once, in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm import Session
from stdnum import numdb
from stdnum.cn import ric

from synthguard.aigc import validate_uscc
from synthguard.audit import record_event
from synthguard.config import Settings
from synthguard.errors import (
    ConfigError,
    ConflictError,
    InvalidIdentifierError,
    InvalidProviderCodeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UsageError,
)
from synthguard.governance.crypto import IdentityCipher, mask_mobile, mask_name, mask_number
from synthguard.governance.models import (
    USER_REF_LENGTH,
    IdentifierRow,
    IdentityOverrideRow,
    SmsChallengeRow,
    SubjectRow,
)
from synthguard.governance.sms import SmsSender
from synthguard.governance.verifiers import IdentityVerifier, VerificationOutcome, VerificationRequest

__all__ = [
    "USER_REF_PATTERN",
    "IdentifierType",
    "IdentifierView",
    "IdentityState",
    "IdentityView",
    "OverrideView",
    "ResidentId",
    "SmsChallenge",
    "SmsConfirmation",
    "SmsOutcome",
    "SubjectKind",
    "aware_now",
    "can_publish",
    "check_reason",
    "check_user_ref",
    "close_account",
    "confirm_mobile_verification",
    "decide_override",
    "get_identity",
    "insert_unique",
    "list_overrides",
    "parse_mobile",
    "parse_resident_id",
    "parse_uscc",
    "register_subject",
    "request_override",
    "reveal_identity",
    "start_mobile_verification",
    "submit_identity",
]

#: Longest text a parser looks at (anything longer is refused before any work).
MAX_INPUT_LENGTH: Final = 64
#: A birth date further back than this is not plausible for a living user.
MAX_AGE_YEARS: Final = 130
#: The first day the 15-digit first-generation resident ID card was no longer valid.
LEGACY_ID_VOID_FROM: Final = dt.date(2013, 1, 1)
#: Area codes of the residence permits of Hong Kong, Macao and Taiwan residents (issued since 2018).
PERMIT_AREA_CODES: Final = frozenset({"810000", "820000", "830000"})
#: Longest reason text of a state change.
MAX_REASON_LENGTH: Final = 2000

#: The provider's user reference (the same pattern as the other governance areas and the API).
USER_REF_PATTERN: Final = r"[A-Za-z0-9._:@-]{1,128}"
_USER_REF_RE: Final = re.compile(USER_REF_PATTERN)
_SEPARATORS_RE: Final = re.compile(r"[\s\-_./]")


class SubjectKind(enum.StrEnum):
    """A natural person or an organisation (legal person or other)."""

    PERSON = "person"
    ORGANISATION = "organisation"


class IdentityState(enum.StrEnum):
    """Real-name state of a subject; only ``VERIFIED`` may publish."""

    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class IdentifierType(enum.StrEnum):
    """The identity numbers Art. 9 names (the national network identity service is a verifier)."""

    RESIDENT_ID = "resident_id"
    USCC = "uscc"
    MOBILE = "mobile"


#: Which subject kinds may hold which identifier.
_ALLOWED: Final[Mapping[IdentifierType, frozenset[SubjectKind]]] = {
    IdentifierType.RESIDENT_ID: frozenset({SubjectKind.PERSON}),
    IdentifierType.USCC: frozenset({SubjectKind.ORGANISATION}),
    IdentifierType.MOBILE: frozenset({SubjectKind.PERSON, SubjectKind.ORGANISATION}),
}


# -- parsers (untrusted input) -----------------------------------------------------------------


def _normalise(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidIdentifierError(f"{what} must be text")
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidIdentifierError(f"{what} is too long ({len(text)} characters)")
    # Full-width digits and letters (common from Chinese input methods) become ASCII.
    return _SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", text)).upper()


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A well-formed resident ID number and what it says; ``number`` is the 18-character form."""

    number: str
    birth_date: dt.date
    area_code: str
    sex: str
    #: True when a 15-digit first-generation number was converted.
    converted_from_legacy: bool = False

    @property
    def masked(self) -> str:
        return mask_number(self.number)

    def __repr__(self) -> str:  # never print the number
        return f"ResidentId({self.masked!r})"


def _legacy_to_18(number15: str) -> str:
    body = number15[:6] + "19" + number15[6:]
    return body + ric.calc_check_digit(body + "0")


def _area_plausible(area: str, birth_year: int) -> bool:
    if area in PERMIT_AREA_CODES:
        return True
    found = {k: v for _part, props in numdb.get("cn/loc").info(area) for k, v in props.items()}
    if "province" not in found or "county" not in found:
        return False
    for county in found["county"].split(","):
        if not county.startswith("["):
            return True
        span = county[1:].split("]", 1)[0]
        _start, _sep, end = span.partition("-")
        # Assigned when the number was issued, which may be long after birth: it only has to have
        # been in use at some time from the birth year on.
        if not end or int(end) >= birth_year:
            return True
    return False


def parse_resident_id(text: str, *, today: dt.date | None = None, accept_legacy: bool = False) -> ResidentId:
    """Parse and check a resident ID number; ``InvalidIdentifierError`` says what is wrong (masked).

    >>> parse_resident_id("11010519491231002X").birth_date
    datetime.date(1949, 12, 31)
    """
    number = _normalise(text, "resident ID number")
    today = today if today is not None else dt.datetime.now(dt.UTC).date()
    converted = False
    if len(number) == 15 and number.isascii() and number.isdigit():
        if not accept_legacy:
            raise InvalidIdentifierError(
                f"resident ID number {mask_number(number)} is a 15-digit first-generation number, void "
                f"since {LEGACY_ID_VOID_FROM}: give the 18-character number of the current card"
            )
        number = _legacy_to_18(number)
        converted = True
    masked = mask_number(number)
    if len(number) != 18:
        raise InvalidIdentifierError(f"a resident ID number has 18 characters, got {len(number)}")
    if not (number[:17].isascii() and number[:17].isdigit() and number[17] in "0123456789X"):
        raise InvalidIdentifierError(
            f"resident ID number {masked}: 17 digits and a check character (digit or X) expected"
        )
    if number[17] != ric.calc_check_digit(number):
        raise InvalidIdentifierError(f"resident ID number {masked}: the check character is wrong")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise InvalidIdentifierError(f"resident ID number {masked}: the birth date does not exist") from exc
    if birth > today:
        raise InvalidIdentifierError(f"resident ID number {masked}: the birth date is in the future")
    if today.year - birth.year > MAX_AGE_YEARS:
        raise InvalidIdentifierError(
            f"resident ID number {masked}: a birth year of {birth.year} is not plausible"
        )
    area = number[:6]
    if not _area_plausible(area, birth.year):
        raise InvalidIdentifierError(
            f"resident ID number {masked}: area code {area} is not known (or was retired before the "
            f"birth year); if the number is genuine, ask for a reviewed manual override"
        )
    sex = "male" if int(number[16]) % 2 else "female"
    return ResidentId(number, birth, area, sex, converted)


def parse_uscc(text: str) -> str:
    """Parse and check a unified social credit code (GB 32100, with the GB 11714 check digit).

    >>> parse_uscc("91110102MACQD9K640")
    '91110102MACQD9K640'
    """
    number = _normalise(text, "unified social credit code")
    masked = mask_number(number)
    if len(number) != 18:
        raise InvalidIdentifierError(f"a unified social credit code has 18 characters, got {len(number)}")
    try:
        return validate_uscc(number)
    except InvalidProviderCodeError as exc:
        # aigc's messages quote the code and its organisation code; show them masked.
        reason = str(exc).replace(number, masked).replace(number[8:17], mask_number(number[8:17]))
        raise InvalidIdentifierError(reason.replace("USCC", "unified social credit code", 1)) from exc


def parse_mobile(text: str) -> str:
    """Parse a mainland China mobile number (``138 1234 5678``, ``+86 138...``); returns E.164.

    >>> parse_mobile("138 1234 5678")
    '+8613812345678'
    """
    if not isinstance(text, str) or len(text) > MAX_INPUT_LENGTH:
        raise InvalidIdentifierError("mobile number must be text of at most 64 characters")
    try:
        parsed = phonenumbers.parse(unicodedata.normalize("NFKC", text), "CN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifierError("not a phone number") from exc
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.region_code_for_number(parsed) != "CN":
        raise InvalidIdentifierError(f"{mask_mobile(e164)} is not a valid mainland China number")
    kind = phonenumbers.number_type(parsed)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidIdentifierError(
            f"{mask_mobile(e164)} is not a mobile number (an SMS code cannot reach it)"
        )
    return e164


def _parse(id_type: IdentifierType, number: str, settings: Settings, today: dt.date) -> str:
    if id_type is IdentifierType.RESIDENT_ID:
        return parse_resident_id(
            number, today=today, accept_legacy=settings.identity_accept_legacy_resident_id
        ).number
    if id_type is IdentifierType.USCC:
        return parse_uscc(number)
    return parse_mobile(number)


def _mask(id_type: IdentifierType, value: str) -> str:
    return mask_mobile(value) if id_type is IdentifierType.MOBILE else mask_number(value)


# -- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentifierView:
    """An identifier as it may be shown: masked."""

    id_type: str
    masked: str
    verified: bool
    checksum_ok: bool
    purged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_type": self.id_type,
            "masked": self.masked,
            "verified": self.verified,
            "checksum_ok": self.checksum_ok,
            "purged": self.purged,
        }


@dataclass(frozen=True, slots=True)
class IdentityView:
    """A subject and its identifiers as they may be shown: masked, never decrypted."""

    user_ref: str
    kind: str
    state: str
    state_reason: str | None
    verified_method: str | None
    verified_at: dt.datetime | None
    name_masked: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    purged: bool
    identifiers: tuple[IdentifierView, ...] = field(default=())

    @property
    def can_publish(self) -> bool:
        return self.state == IdentityState.VERIFIED and self.closed_at is None and not self.purged

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_ref": self.user_ref,
            "kind": self.kind,
            "state": self.state,
            "state_reason": self.state_reason,
            "verified_method": self.verified_method,
            "verified_at": self.verified_at,
            "name_masked": self.name_masked,
            "created_at": self.created_at,
            "closed_at": self.closed_at,
            "purged": self.purged,
            "can_publish": self.can_publish,
            "identifiers": [i.to_dict() for i in self.identifiers],
        }


def _view(session: Session, subject: SubjectRow) -> IdentityView:
    rows = session.scalars(
        sa.select(IdentifierRow).where(IdentifierRow.subject_id == subject.id).order_by(IdentifierRow.id)
    ).all()
    identifiers = tuple(
        IdentifierView(
            row.id_type, row.masked, row.verified_at is not None, row.checksum_ok, row.purged_at is not None
        )
        for row in rows
        if row.lookup_hash is not None or row.purged_at is not None
    )
    return IdentityView(
        user_ref=subject.user_ref,
        kind=subject.kind,
        state=subject.state,
        state_reason=subject.state_reason,
        verified_method=subject.verified_method,
        verified_at=subject.verified_at,
        name_masked=subject.name_masked,
        created_at=subject.created_at,
        closed_at=subject.closed_at,
        purged=subject.purged_at is not None,
        identifiers=identifiers,
    )


# -- helpers -------------------------------------------------------------------------------------


def check_user_ref(user_ref: str) -> str:
    """A user reference: 1-128 letters, digits or ``._:@-`` (else ``UsageError``)."""
    if not isinstance(user_ref, str) or not _USER_REF_RE.fullmatch(user_ref):
        raise UsageError(f"user_ref must be 1-{USER_REF_LENGTH} letters, digits or ._:@-")
    return user_ref


def aware_now(now: dt.datetime | None) -> dt.datetime:
    """``now`` in UTC (the current time when ``None``); ``UsageError`` for a naive time."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise UsageError("give a timezone-aware time")
    try:
        return now.astimezone(dt.UTC)
    except OverflowError as exc:
        raise UsageError(f"time {now.isoformat()} is out of range") from exc


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns what UtcDateTime made aware; rows just added in this session keep what was set.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def insert_unique(session: Session, row: object, conflict: str) -> None:
    """Add and flush ``row`` in a savepoint; a unique-constraint violation becomes ``ConflictError``.

    The checks before an insert find the usual duplicates; this catches the concurrent one (two
    transactions on PostgreSQL both passing the check), and leaves the session usable.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except sa.exc.IntegrityError as exc:
        raise ConflictError(conflict) from exc


def check_reason(text: str, what: str = "reason") -> str:
    """A stripped, non-empty reason of at most ``MAX_REASON_LENGTH`` characters (else ``UsageError``)."""
    text = text.strip()
    if not text:
        raise UsageError(f"a {what} is required")
    if len(text) > MAX_REASON_LENGTH:
        raise UsageError(f"the {what} is longer than {MAX_REASON_LENGTH} characters")
    return text


def _subject(session: Session, user_ref: str, *, lock: bool = False) -> SubjectRow:
    query = sa.select(SubjectRow).where(SubjectRow.user_ref == check_user_ref(user_ref))
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"no user {user_ref!r} is registered for identity")
    return row


def _open_subject(session: Session, user_ref: str) -> SubjectRow:
    subject = _subject(session, user_ref, lock=True)
    if subject.closed_at is not None or subject.purged_at is not None:
        raise ConflictError(f"the account of user {user_ref!r} is closed")
    return subject


def _ref(subject: SubjectRow) -> str:
    return f"identity:{subject.user_ref}"


def _set_state(
    subject: SubjectRow,
    state: IdentityState,
    now: dt.datetime,
    *,
    reason: str | None,
    method: str | None = None,
) -> None:
    subject.state = state.value
    subject.state_reason = reason
    subject.updated_at = now
    if state is IdentityState.VERIFIED:
        subject.verified_method = method
        subject.verified_at = now
    elif state is not IdentityState.PENDING:
        subject.verified_method = None
        subject.verified_at = None


def _bind(
    session: Session,
    cipher: IdentityCipher,
    subject: SubjectRow,
    id_type: IdentifierType,
    value: str,
    now: dt.datetime,
    *,
    checksum_ok: bool = True,
) -> IdentifierRow:
    """The subject's identifier row for ``value`` (new or existing); ConflictError if another's."""
    digest = cipher.lookup_hash(value, field=id_type.value)
    existing = session.scalars(
        sa.select(IdentifierRow)
        .where(IdentifierRow.id_type == id_type.value, IdentifierRow.lookup_hash == digest)
        .with_for_update()
    ).one_or_none()
    if existing is not None:
        if existing.subject_id != subject.id:
            raise ConflictError(f"{_mask(id_type, value)} is already bound to another user")
        return existing
    row = IdentifierRow(
        subject_id=subject.id,
        id_type=id_type.value,
        cipher=cipher.encrypt(value, user_ref=subject.user_ref, field=id_type.value),
        lookup_hash=digest,
        masked=_mask(id_type, value),
        checksum_ok=checksum_ok,
        verified_at=None,
        created_at=now,
    )
    insert_unique(session, row, f"{_mask(id_type, value)} is already bound to another user")
    return row


# -- services ------------------------------------------------------------------------------------


def register_subject(
    session: Session,
    settings: Settings,
    *,
    user_ref: str,
    kind: SubjectKind,
    actor: str,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> IdentityView:
    """Register a user (state ``unverified``); ``ConflictError`` if ``user_ref`` exists."""
    now = aware_now(now)
    check_user_ref(user_ref)
    kind = SubjectKind(kind)
    if session.scalars(sa.select(SubjectRow.id).where(SubjectRow.user_ref == user_ref)).first() is not None:
        raise ConflictError(f"user {user_ref!r} is already registered")
    subject = SubjectRow(
        user_ref=user_ref,
        kind=kind.value,
        state=IdentityState.UNVERIFIED.value,
        created_at=now,
        updated_at=now,
    )
    if name is not None:
        _set_name(subject, IdentityCipher.from_settings(settings), name)
    insert_unique(session, subject, f"user {user_ref!r} is already registered")
    record_event(
        session,
        event="identity.registered",
        actor=actor,
        subject=_ref(subject),
        data={"kind": kind.value, "name": subject.name_masked},
    )
    return _view(session, subject)


def _set_name(subject: SubjectRow, cipher: IdentityCipher, name: str) -> None:
    name = unicodedata.normalize("NFC", name).strip()
    if not name or len(name) > 200:
        raise UsageError("a name of 1-200 characters is required")
    subject.name_cipher = cipher.encrypt(name, user_ref=subject.user_ref, field="name")
    subject.name_masked = mask_name(name)[:64]


def get_identity(session: Session, user_ref: str) -> IdentityView:
    """The subject with its masked identifiers; ``NotFoundError`` if unknown."""
    return _view(session, _subject(session, user_ref))


def can_publish(session: Session, user_ref: str) -> bool:
    """True only for a registered, verified, open account (Art. 9: no publishing otherwise)."""
    try:
        check_user_ref(user_ref)
    except UsageError:
        return False
    row = session.execute(
        sa.select(SubjectRow.state, SubjectRow.closed_at, SubjectRow.purged_at).where(
            SubjectRow.user_ref == user_ref
        )
    ).one_or_none()
    return (
        row is not None
        and row.state == IdentityState.VERIFIED
        and row.closed_at is None
        and row.purged_at is None
    )


def submit_identity(
    session: Session,
    settings: Settings,
    *,
    user_ref: str,
    id_type: IdentifierType,
    number: str,
    name: str,
    actor: str,
    verifier: IdentityVerifier | None = None,
    now: dt.datetime | None = None,
) -> IdentityView:
    """Record a resident ID (person) or USCC (organisation) with the name, and verify it if possible.

    The number is parsed (``InvalidIdentifierError``), encrypted and bound to the user
    (``ConflictError`` if bound to another). The state becomes ``pending``, then with a ``verifier``:
    ``verified`` on a match, ``rejected`` on a mismatch (the number is released so that its real owner
    can bind it), still ``pending`` when the service is unavailable. A verified user stays verified.
    """
    now = aware_now(now)
    id_type = IdentifierType(id_type)
    if id_type is IdentifierType.MOBILE:
        raise UsageError("a mobile number is verified by SMS code: use start_mobile_verification")
    subject = _open_subject(session, user_ref)
    if SubjectKind(subject.kind) not in _ALLOWED[id_type]:
        raise UsageError(f"a {subject.kind} cannot be identified by a {id_type.value}")
    value = _parse(id_type, number, settings, now.date())
    cipher = IdentityCipher.from_settings(settings)
    row = _bind(session, cipher, subject, id_type, value, now)
    _set_name(subject, cipher, name)
    was_verified = subject.state == IdentityState.VERIFIED
    if not was_verified:
        _set_state(subject, IdentityState.PENDING, now, reason="identity submitted")
    record_event(
        session,
        event="identity.submitted",
        actor=actor,
        subject=_ref(subject),
        data={
            "id_type": id_type.value,
            "identifier": row.masked,
            "name": subject.name_masked,
            "state": subject.state,
        },
    )
    if verifier is None:
        return _view(session, subject)
    result = verifier.verify(VerificationRequest(id_type.value, value, name.strip()))
    data: dict[str, Any] = {
        "id_type": id_type.value,
        "identifier": row.masked,
        "verifier": verifier.name,
        "outcome": result.outcome.value,
        "reference": result.reference,
    }
    if result.outcome is VerificationOutcome.MATCH:
        row.verified_at = now
        if not was_verified:
            _set_state(subject, IdentityState.VERIFIED, now, reason=None, method=f"verifier:{verifier.name}")
        record_event(session, event="identity.verified", actor="system", subject=_ref(subject), data=data)
    elif result.outcome is VerificationOutcome.MISMATCH:
        row.lookup_hash = None  # released: the number may belong to someone else
        if not was_verified:
            _set_state(
                subject, IdentityState.REJECTED, now, reason=f"{verifier.name}: identity does not match"
            )
        record_event(session, event="identity.rejected", actor="system", subject=_ref(subject), data=data)
    return _view(session, subject)


@dataclass(frozen=True, slots=True)
class SmsChallenge:
    """A code was sent: the client confirms it with ``challenge_id`` before ``expires_at``."""

    challenge_id: str
    phone_masked: str
    expires_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "challenge_id": self.challenge_id,
            "phone_masked": self.phone_masked,
            "expires_at": self.expires_at,
        }


class SmsOutcome(enum.StrEnum):
    """What confirming a code did (a value, not an exception: a wrong code must still be counted)."""

    VERIFIED = "verified"
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    SPENT = "spent"


@dataclass(frozen=True, slots=True)
class SmsConfirmation:
    outcome: SmsOutcome
    attempts_left: int
    identity: IdentityView | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "attempts_left": self.attempts_left,
            "identity": self.identity.to_dict() if self.identity else None,
        }


def start_mobile_verification(
    session: Session,
    settings: Settings,
    *,
    user_ref: str,
    mobile: str,
    sender: SmsSender,
    actor: str,
    now: dt.datetime | None = None,
) -> SmsChallenge:
    """Send a 6-digit code to ``mobile`` for ``user_ref``.

    Refused with ``ConflictError`` when the number is bound to another user, ``RateLimitError`` after
    ``sms_max_per_hour`` codes to that number or for that user within an hour. The code is stored only
    as a keyed hash; a sender failure (``ExternalServiceError``) propagates so the transaction rolls back.
    """
    now = aware_now(now)
    subject = _open_subject(session, user_ref)
    e164 = parse_mobile(mobile)
    cipher = IdentityCipher.from_settings(settings)
    phone_hash = cipher.lookup_hash(e164, field=IdentifierType.MOBILE.value)
    owner = session.scalars(
        sa.select(IdentifierRow.subject_id).where(
            IdentifierRow.id_type == IdentifierType.MOBILE.value, IdentifierRow.lookup_hash == phone_hash
        )
    ).first()
    if owner is not None and owner != subject.id:
        raise ConflictError(f"{mask_mobile(e164)} is already bound to another user")
    hour_ago = now - dt.timedelta(hours=1)
    for column, value in ((SmsChallengeRow.phone_hash, phone_hash), (SmsChallengeRow.subject_id, subject.id)):
        recent = session.scalars(
            sa.select(SmsChallengeRow.created_at)
            .where(column == value, SmsChallengeRow.created_at > hour_ago)
            .order_by(SmsChallengeRow.created_at)
        ).all()
        if len(recent) >= settings.sms_max_per_hour:
            retry = (_aware(recent[0]) + dt.timedelta(hours=1) - now).total_seconds()
            raise RateLimitError(
                f"at most {settings.sms_max_per_hour} SMS codes an hour to one number or user",
                retry_after=max(retry, 1.0),
            )
    challenge_id = secrets.token_urlsafe(16)
    code = f"{secrets.randbelow(1_000_000):06d}"
    expires_at = now + dt.timedelta(seconds=settings.sms_code_ttl_seconds)
    row = SmsChallengeRow(
        id=challenge_id,
        subject_id=subject.id,
        phone_hash=phone_hash,
        phone_cipher=cipher.encrypt(e164, user_ref=subject.user_ref, field="sms_phone"),
        phone_masked=mask_mobile(e164),
        code_hash=cipher.code_hash(challenge_id, code),
        created_at=now,
        expires_at=expires_at,
        attempts=0,
    )
    session.add(row)
    session.flush()
    minutes = max(1, settings.sms_code_ttl_seconds // 60)
    try:
        text = settings.sms_message_template.format(code=code, minutes=minutes)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"sms_message_template may use only {{code}} and {{minutes}}: {exc!r}") from exc
    if code not in text:
        raise ConfigError("sms_message_template must contain {code}")
    sender.send(e164, text)
    record_event(
        session,
        event="identity.sms_sent",
        actor=actor,
        subject=_ref(subject),
        data={"phone": row.phone_masked, "challenge": challenge_id, "sender": sender.name},
    )
    return SmsChallenge(challenge_id, row.phone_masked, expires_at)


def confirm_mobile_verification(
    session: Session,
    settings: Settings,
    *,
    user_ref: str,
    challenge_id: str,
    code: str,
    actor: str,
    now: dt.datetime | None = None,
) -> SmsConfirmation:
    """Check a code; on success bind the number and verify the user.

    Returns the outcome as a value, so the caller commits the counted attempt even when the code is
    wrong. ``NotFoundError`` when the challenge does not exist for this user.
    """
    now = aware_now(now)
    subject = _open_subject(session, user_ref)
    row = session.scalars(
        sa.select(SmsChallengeRow)
        .where(SmsChallengeRow.id == challenge_id, SmsChallengeRow.subject_id == subject.id)
        .with_for_update()
    ).one_or_none()
    if row is None or row.phone_cipher is None:
        raise NotFoundError("no such SMS challenge for this user")
    limit = settings.sms_code_max_attempts
    if row.consumed_at is not None or row.attempts >= limit:
        return SmsConfirmation(SmsOutcome.SPENT, 0)
    if _aware(row.expires_at) <= now:
        return SmsConfirmation(SmsOutcome.EXPIRED, limit - row.attempts)
    cipher = IdentityCipher.from_settings(settings)
    data: dict[str, Any] = {"phone": row.phone_masked, "challenge": challenge_id}
    if not hmac.compare_digest(cipher.code_hash(challenge_id, code), row.code_hash):
        row.attempts += 1
        record_event(
            session,
            event="identity.sms_failed",
            actor=actor,
            subject=_ref(subject),
            data={**data, "attempts": row.attempts},
        )
        return SmsConfirmation(SmsOutcome.WRONG_CODE, limit - row.attempts)
    row.consumed_at = now
    e164 = cipher.decrypt(row.phone_cipher, user_ref=subject.user_ref, field="sms_phone")
    identifier = _bind(session, cipher, subject, IdentifierType.MOBILE, e164, now)
    identifier.verified_at = now
    if subject.state != IdentityState.VERIFIED:
        _set_state(subject, IdentityState.VERIFIED, now, reason=None, method="sms")
    record_event(
        session, event="identity.verified", actor=actor, subject=_ref(subject), data={**data, "method": "sms"}
    )
    return SmsConfirmation(SmsOutcome.VERIFIED, limit - row.attempts, _view(session, subject))


@dataclass(frozen=True, slots=True)
class OverrideView:
    """A manual override request and its decision."""

    id: int
    user_ref: str
    target_state: str
    reason: str
    identifier_masked: str | None
    requested_by: str
    requested_at: dt.datetime
    decision: str | None
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_ref": self.user_ref,
            "target_state": self.target_state,
            "reason": self.reason,
            "identifier_masked": self.identifier_masked,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "decision": self.decision,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "decision_reason": self.decision_reason,
        }


def _override_view(session: Session, row: IdentityOverrideRow) -> OverrideView:
    subject = session.get(SubjectRow, row.subject_id)
    identifier = session.get(IdentifierRow, row.identifier_id) if row.identifier_id is not None else None
    return OverrideView(
        id=row.id,
        user_ref=subject.user_ref if subject is not None else "",
        target_state=row.target_state,
        reason=row.reason,
        identifier_masked=identifier.masked if identifier is not None else None,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        decision=row.decision,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


def _loose_number(id_type: IdentifierType, number: str) -> tuple[str, bool]:
    """A number vouched for by staff: well shaped, checksum may fail; returns (value, checksum_ok)."""
    value = _normalise(number, id_type.value)
    if len(value) != 18 or not re.fullmatch(r"[0-9A-Z]{18}", value):
        raise InvalidIdentifierError(f"{id_type.value} must be 18 digits or capital letters")
    try:
        if id_type is IdentifierType.RESIDENT_ID:
            parse_resident_id(value)
        else:
            parse_uscc(value)
    except InvalidIdentifierError:
        return value, False
    return value, True


def request_override(
    session: Session,
    settings: Settings,
    *,
    user_ref: str,
    target_state: IdentityState,
    reason: str,
    actor: str,
    id_type: IdentifierType | None = None,
    number: str | None = None,
    now: dt.datetime | None = None,
) -> OverrideView:
    """Ask for a manual state change (``verified`` or ``rejected``) that a second staff member decides.

    With ``id_type`` and ``number``, the override vouches for a number whose checksum fails (staff saw
    the document): it is bound now, unverified, and verified when the override is approved.
    ``ConflictError`` if an override of this user is already pending.
    """
    now = aware_now(now)
    target = IdentityState(target_state)
    if target not in (IdentityState.VERIFIED, IdentityState.REJECTED):
        raise UsageError("an override sets verified or rejected")
    subject = _open_subject(session, user_ref)
    pending = session.scalars(
        sa.select(IdentityOverrideRow.id).where(
            IdentityOverrideRow.subject_id == subject.id, IdentityOverrideRow.decision.is_(None)
        )
    ).first()
    if pending is not None:
        raise ConflictError(f"override {pending} of user {user_ref!r} is still pending")
    identifier: IdentifierRow | None = None
    if (id_type is None) != (number is None):
        raise UsageError("give both id_type and number, or neither")
    if id_type is not None and number is not None:
        kind = IdentifierType(id_type)
        if kind is IdentifierType.MOBILE:
            raise UsageError("a mobile number is verified by SMS code, not by override")
        if SubjectKind(subject.kind) not in _ALLOWED[kind]:
            raise UsageError(f"a {subject.kind} cannot be identified by a {kind.value}")
        value, checksum_ok = _loose_number(kind, number)
        cipher = IdentityCipher.from_settings(settings)
        identifier = _bind(session, cipher, subject, kind, value, now, checksum_ok=checksum_ok)
    row = IdentityOverrideRow(
        subject_id=subject.id,
        target_state=target.value,
        reason=check_reason(reason),
        identifier_id=identifier.id if identifier is not None else None,
        requested_by=actor,
        requested_at=now,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="identity.override_requested",
        actor=actor,
        subject=_ref(subject),
        data={
            "override": row.id,
            "target_state": target.value,
            "identifier": identifier.masked if identifier is not None else None,
            "checksum_ok": identifier.checksum_ok if identifier is not None else None,
        },
    )
    return _override_view(session, row)


def decide_override(
    session: Session,
    *,
    override_id: int,
    approve: bool,
    reason: str,
    actor: str,
    now: dt.datetime | None = None,
) -> OverrideView:
    """Approve or deny a pending override; the decider must not be who requested it.

    ``PermissionDeniedError`` for the requester deciding their own request, ``ConflictError`` for an
    override already decided.
    """
    now = aware_now(now)
    row = session.scalars(
        sa.select(IdentityOverrideRow).where(IdentityOverrideRow.id == override_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no identity override {override_id}")
    if row.decision is not None:
        raise ConflictError(f"identity override {override_id} was already {row.decision}")
    if row.requested_by == actor:
        raise PermissionDeniedError(
            "a manual override is decided by a second staff member, not its requester"
        )
    subject = session.get(SubjectRow, row.subject_id, with_for_update=True)
    if subject is None or subject.closed_at is not None or subject.purged_at is not None:
        raise ConflictError("the account of this override is closed")
    row.decision = "approved" if approve else "denied"
    row.decided_by = actor
    row.decided_at = now
    row.decision_reason = check_reason(reason)
    if approve:
        target = IdentityState(row.target_state)
        if target is IdentityState.VERIFIED:
            _set_state(subject, target, now, reason=None, method=f"manual:{row.id}")
            if row.identifier_id is not None:
                identifier = session.get(IdentifierRow, row.identifier_id)
                if identifier is not None:
                    identifier.verified_at = now
        else:
            _set_state(subject, target, now, reason=f"manual override {row.id}")
    record_event(
        session,
        event="identity.override_decided",
        actor=actor,
        subject=_ref(subject),
        data={
            "override": row.id,
            "decision": row.decision,
            "target_state": row.target_state,
            "state": subject.state,
        },
    )
    return _override_view(session, row)


def list_overrides(session: Session, *, pending_only: bool = True, limit: int = 100) -> list[OverrideView]:
    """Override requests, oldest first (only the undecided ones by default)."""
    query = sa.select(IdentityOverrideRow).order_by(IdentityOverrideRow.id).limit(limit)
    if pending_only:
        query = query.where(IdentityOverrideRow.decision.is_(None))
    return [_override_view(session, row) for row in session.scalars(query)]


def close_account(
    session: Session, *, user_ref: str, reason: str, actor: str, now: dt.datetime | None = None
) -> IdentityView:
    """Mark the account closed: no publishing, and the identity retention clock starts."""
    now = aware_now(now)
    subject = _open_subject(session, user_ref)
    subject.closed_at = now
    subject.updated_at = now
    record_event(
        session,
        event="identity.account_closed",
        actor=actor,
        subject=_ref(subject),
        data={"reason": check_reason(reason)},
    )
    return _view(session, subject)


def reveal_identity(
    session: Session, settings: Settings, *, user_ref: str, reason: str, actor: str
) -> dict[str, Any]:
    """Decrypt a subject's name and numbers for a lawful request (Art. 21); the reading is audited.

    The returned values are clear text: the caller shows them once and never logs them.
    """
    reason = check_reason(reason)
    subject = _subject(session, user_ref)
    cipher = IdentityCipher.from_settings(settings)
    rows = session.scalars(
        sa.select(IdentifierRow).where(
            IdentifierRow.subject_id == subject.id, IdentifierRow.cipher.is_not(None)
        )
    ).all()
    numbers = [
        {
            "id_type": row.id_type,
            "number": cipher.decrypt(row.cipher, user_ref=subject.user_ref, field=row.id_type),
            "verified": row.verified_at is not None,
            "bound": row.lookup_hash is not None,
        }
        for row in rows
        if row.cipher is not None
    ]
    name = (
        cipher.decrypt(subject.name_cipher, user_ref=subject.user_ref, field="name")
        if subject.name_cipher is not None
        else None
    )
    record_event(
        session,
        event="identity.revealed",
        actor=actor,
        subject=_ref(subject),
        data={"reason": reason, "identifiers": [row.masked for row in rows]},
    )
    return {"user_ref": subject.user_ref, "name": name, "identifiers": numbers}
