"""``/api/generation``: generation records and the unlabeled-output log (``governance.generation``).

The gateway (a compliance token) records every generated content with its ProduceID; staff trace a
ProduceID found by ``detect`` (watermark or metadata) back to the user, whose identity is answered
masked; ``GET /unlabeled-log`` is the Measures Art. 9 log of content delivered without an explicit
label.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import Principal, ReadSession, WriteSession, require_roles
from synthguard.api.routes.identity import IdentityOut
from synthguard.governance import generation
from synthguard.governance.identity import USER_REF_PATTERN

__all__ = ["router"]

router = APIRouter(prefix="/api/generation", tags=["generation"])

Writer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE, Role.REVIEWER, Role.AUDITOR))]

REF: Final = f"^{USER_REF_PATTERN}$"
PRODUCE_ID: Final = r"^[0-9A-Fa-f]{16}$"
DIGEST: Final = r"^[0-9A-Fa-f]{64}$"


class GenerationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    produce_id: Annotated[str, Field(pattern=PRODUCE_ID)]
    user_ref: Annotated[str, Field(pattern=REF)]
    modality: Annotated[str, Field(pattern=r"^(text|image|audio|video)$")]
    content_digest: Annotated[str, Field(pattern=DIGEST)]
    labels: Annotated[
        list[Annotated[str, Field(pattern=r"^(visible|watermark|metadata)$")]], Field(max_length=3)
    ]
    unlabeled_agreement_version: (
        Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-_]{0,31}$")] | None
    ) = None


class GenerationOut(BaseModel):
    produce_id: str
    user_ref: str | None
    modality: str
    content_digest: str
    labels: list[str]
    explicit_label: bool
    unlabeled_agreement_version: str | None
    created_at: dt.datetime
    purged: bool


class TraceOut(BaseModel):
    """The record and, when the user is registered, their identity (masked)."""

    generation: GenerationOut
    identity: IdentityOut | None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@router.post("/records", status_code=201, summary="Record a generated content")
def record(body: GenerationIn, session: WriteSession, writer: Writer) -> GenerationOut:
    """Without ``visible`` among ``labels``, ``unlabeled_agreement_version`` must name a version the user
    accepted (409 otherwise). 409 for a ProduceID already recorded."""
    view = generation.record_generation(
        session, produce_id=body.produce_id, user_ref=body.user_ref, modality=body.modality,
        content_digest=body.content_digest, labels=body.labels,
        unlabeled_agreement_version=body.unlabeled_agreement_version, actor=writer.actor,
    )  # fmt: skip
    return GenerationOut.model_validate(view.to_dict())


@router.get("/records/{produce_id}", summary="Trace a ProduceID back to its record and user")
def trace(
    produce_id: Annotated[str, Path(pattern=PRODUCE_ID)], session: ReadSession, _reader: Reader
) -> TraceOut:
    return TraceOut.model_validate(generation.find_generation(session, produce_id).to_dict())


@router.get("/records", summary="Records of content with this SHA-256")
def by_digest(
    session: ReadSession,
    _reader: Reader,
    content_digest: Annotated[str, Query(pattern=DIGEST)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[GenerationOut]:
    found = generation.find_generations_by_digest(session, content_digest, limit=limit)
    return [GenerationOut.model_validate(v.to_dict()) for v in found]


@router.get("/unlabeled-log", summary="Content delivered without an explicit label (Measures Art. 9)")
def unlabeled_log(
    session: ReadSession,
    _reader: Reader,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    user_ref: Annotated[str | None, Query(pattern=REF)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[GenerationOut]:
    found = generation.unlabeled_log(
        session, since=_aware(since), until=_aware(until), user_ref=user_ref, limit=limit, offset=offset
    )
    return [GenerationOut.model_validate(v.to_dict()) for v in found]
