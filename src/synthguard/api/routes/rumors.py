"""``/api/rumors``: rumor refutation records (Art. 11; ``governance.rumors``).

Reviewers and compliance officers record a rumor with its refutation notice, link it to the
characteristics database's rumor entries, and record every piece of content that repeated it (by
hand, or from the review engine's recorded hits of the linked entries); auditors read.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import Principal, ReadSession, WriteSession, require_roles
from synthguard.errors import UsageError
from synthguard.governance import rumors

__all__ = ["router"]

router = APIRouter(prefix="/api/rumors", tags=["rumors"])

Staff = Annotated[Principal, Depends(require_roles(Role.REVIEWER, Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.REVIEWER, Role.COMPLIANCE, Role.AUDITOR))]

ENTRY_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,64}$"
EntryId = Annotated[str, Field(pattern=ENTRY_PATTERN)]
ProduceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
Id = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=rumors.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Short = Annotated[str, Field(min_length=1, max_length=rumors.MAX_CLAIM)]


class RefutationIn(BaseModel):
    """The published refutation notice."""

    model_config = ConfigDict(extra="forbid")

    title: Short
    text: Annotated[str, Field(min_length=1, max_length=rumors.MAX_TEXT)]
    source: Short
    url: Annotated[str, Field(min_length=1, max_length=rumors.MAX_URL, pattern=r"^https?://\S+$")]
    refuted_at: AwareDatetime


class RumorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim: Short
    refutation: RefutationIn
    risk: Annotated[str, Field(pattern=r"^A[1-5]\.[1-9]$")] = "A1.7"
    #: Rumor entries of the characteristics database that find this claim.
    entry_ids: Annotated[list[EntryId], Field(max_length=100)] = Field(default_factory=list)


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: EntryId


class OccurrenceIn(BaseModel):
    """Content that repeated the rumor: a ProduceID or a SHA-256 of the content, and where."""

    model_config = ConfigDict(extra="forbid")

    produce_id: ProduceId | None = None
    content_digest: Digest | None = None
    location: Annotated[str, Field(min_length=1, max_length=rumors.MAX_URL)]
    note: Annotated[str, Field(max_length=rumors.MAX_CLAIM)] = ""


class RefutationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str
    text: str
    source: str
    url: str
    refuted_at: dt.datetime


class EntryOut(BaseModel):
    entry_id: str
    term: str


class RumorOut(BaseModel):
    id: int
    claim: str
    risk: str
    refutation: RefutationOut
    created_at: dt.datetime
    actor: str
    entries: list[EntryOut]
    occurrence_count: int


class OccurrenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rumor_id: int
    produce_id: str | None
    content_digest: str | None
    location: str
    review_hit_id: int | None
    found_at: dt.datetime
    actor: str
    note: str


def _rumor(value: rumors.Rumor) -> RumorOut:
    return RumorOut(
        id=value.id,
        claim=value.claim,
        risk=value.risk,
        refutation=RefutationOut.model_validate(value.refutation),
        created_at=value.created_at,
        actor=value.actor,
        entries=[EntryOut(entry_id=e, term=t) for e, t in value.entries],
        occurrence_count=value.occurrence_count,
    )


@router.post("", status_code=201, summary="Record a rumor and its refutation notice")
def record_rumor(body: RumorIn, session: WriteSession, staff: Staff) -> RumorOut:
    """404 when an entry id names no library entry; 400 when it is not a rumor entry."""
    rumor = rumors.record_rumor(
        session,
        claim=body.claim,
        refutation_title=body.refutation.title,
        refutation_text=body.refutation.text,
        refutation_source=body.refutation.source,
        refutation_url=body.refutation.url,
        refuted_at=body.refutation.refuted_at,
        risk=body.risk,
        entry_ids=body.entry_ids,
        actor=staff.actor,
    )
    return _rumor(rumor)


@router.get("", summary="List rumors")
def list_rumors(
    session: ReadSession, _reader: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[RumorOut]:
    """Newest first."""
    return [_rumor(r) for r in rumors.list_rumors(session, limit=limit, offset=offset)]


@router.get("/by-content", summary="The rumors a piece of content repeated")
def rumors_of_content(
    session: ReadSession,
    _reader: Reader,
    produce_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] = None,
    content_digest: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
) -> list[RumorOut]:
    """By ProduceID or content SHA-256 (400 when neither is given)."""
    if produce_id is None and content_digest is None:
        raise UsageError("give produce_id or content_digest")
    found = rumors.rumors_of_content(session, produce_id=produce_id, content_digest=content_digest)
    return [_rumor(r) for r in found]


@router.get("/{rumor_id}", summary="One rumor")
def get_rumor(rumor_id: Id, session: ReadSession, _reader: Reader) -> RumorOut:
    return _rumor(rumors.get_rumor(session, rumor_id))


@router.post("/{rumor_id}/entries", status_code=201, summary="Link a rumor entry of the library")
def link_entry(rumor_id: Id, body: EntryIn, session: WriteSession, staff: Staff) -> RumorOut:
    """409 when already linked."""
    return _rumor(rumors.link_entry(session, rumor_id, body.entry_id, actor=staff.actor))


@router.get("/{rumor_id}/occurrences", summary="Content that repeated the rumor")
def list_occurrences(
    rumor_id: Id, session: ReadSession, _reader: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[OccurrenceOut]:
    found = rumors.list_occurrences(session, rumor_id, limit=limit, offset=offset)
    return [OccurrenceOut.model_validate(o) for o in found]


@router.post("/{rumor_id}/occurrences", status_code=201, summary="Record content that repeated the rumor")
def add_occurrence(rumor_id: Id, body: OccurrenceIn, session: WriteSession, staff: Staff) -> OccurrenceOut:
    """The same content at the same place is recorded once (the existing record is returned)."""
    occurrence, _new = rumors.add_occurrence(
        session,
        rumor_id,
        produce_id=body.produce_id,
        content_digest=body.content_digest,
        location=body.location,
        note=body.note,
        actor=staff.actor,
    )
    return OccurrenceOut.model_validate(occurrence)


@router.post("/{rumor_id}/link-review-hits", summary="Record the review engine's hits as occurrences")
def link_review_hits(rumor_id: Id, session: WriteSession, staff: Staff) -> list[OccurrenceOut]:
    """Hits of the linked entries not yet recorded become occurrences; the new ones are returned."""
    return [
        OccurrenceOut.model_validate(o) for o in rumors.link_review_hits(session, rumor_id, actor=staff.actor)
    ]
