"""``/api/audit``: the audit log for auditors and compliance officers (read-only, plus verification).

Reads (auditor, compliance officer, admin): the tree head, records, signed checkpoints, inclusion and
consistency proofs, a full verification (``GET /verify``; it reads the whole log, so it is for
auditors, not for polling) and an export bundle as a zip. Signing a checkpoint now
(``POST /checkpoints``) is for compliance officers and admins. The public key is public: anyone may
fetch it to check checkpoints.

Hashes are base64 (standard alphabet), as in RFC 9162 proofs and C2SP notes.
"""

from __future__ import annotations

import base64
import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel

from synthguard.accounts.roles import Role
from synthguard.api.deps import (
    AppSettings,
    Principal,
    PublicLimiter,
    ReadSession,
    WriteSession,
    require_roles,
)
from synthguard.audit import checkpoints, log
from synthguard.audit.bundle import export_bundle
from synthguard.audit.models import EVENT_LENGTH, SUBJECT_LENGTH
from synthguard.audit.verify import verify_log
from synthguard.config import Settings
from synthguard.errors import ConflictError, NotFoundError, SynthguardError

__all__ = [
    "CheckpointOut",
    "ConsistencyProofOut",
    "HeadOut",
    "InclusionProofOut",
    "PublicKeyOut",
    "RecordOut",
    "VerifyOut",
    "router",
]

router = APIRouter(prefix="/api/audit", tags=["audit"])

Reader = Annotated[Principal, Depends(require_roles(Role.AUDITOR, Role.COMPLIANCE))]
Signer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
#: Largest index or size a request may name (the log cannot be longer than a 63-bit integer).
_MAX_INDEX: Final = 2**62
Index = Annotated[int, PathParam(ge=0, le=_MAX_INDEX)]
SizeQuery = Annotated[
    int | None, Query(ge=0, le=_MAX_INDEX, description="Tree size (default: the whole log).")
]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class CheckpointOut(BaseModel):
    """A signed checkpoint: the C2SP note and its fields."""

    size: int
    root: str
    origin: str
    key_id: str
    note: str
    created_at: dt.datetime


class HeadOut(BaseModel):
    """The log's current size and root, and its latest checkpoint."""

    size: int
    root: str
    latest_checkpoint: CheckpointOut | None


class RecordOut(BaseModel):
    """One record; ``data`` is the canonical JSON text that was hashed, ``leaf_hash`` its leaf hash."""

    index: int
    time: str
    event: str
    actor: str
    subject: str
    data: str
    leaf_hash: str


class InclusionProofOut(BaseModel):
    """RFC 9162 inclusion proof of record ``index`` in the tree of ``tree_size`` with root ``root``."""

    index: int
    tree_size: int
    root: str
    leaf_hash: str
    proof: list[str]


class ConsistencyProofOut(BaseModel):
    """RFC 9162 consistency proof from ``(size1, root1)`` to ``(size2, root2)``."""

    size1: int
    root1: str
    size2: int
    root2: str
    proof: list[str]


class ProblemOut(BaseModel):
    """One problem found by verification."""

    index: int | None
    kind: str
    message: str


class VerifyOut(BaseModel):
    """The outcome of re-checking the whole log; ``first_problem`` names the first altered record."""

    ok: bool
    size: int
    root: str
    records_checked: int
    nodes_checked: int
    checkpoints_checked: int
    first_problem: ProblemOut | None
    problems: list[ProblemOut]
    problems_truncated: bool


class PublicKeyOut(BaseModel):
    """The Ed25519 key that signs checkpoints: PEM, key name (the log's origin) and C2SP key id."""

    origin: str
    key_id: str
    public_key_pem: str


def _signer(settings: Settings, doing: str, error: type[SynthguardError]) -> checkpoints.CheckpointSigner:
    """The checkpoint signer; without a configured key, ``error`` (a 404 or 409, not a 500)."""
    if not checkpoints.has_signer(settings):
        raise error(f"cannot {doing}: no audit checkpoint key is configured on this service")
    return checkpoints.signer_from_settings(settings)


def _checkpoint(value: checkpoints.StoredCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        size=value.size,
        root=_b64(value.root),
        origin=value.origin,
        key_id=value.key_id,
        note=value.note,
        created_at=value.created_at,
    )


def _record(value: log.AuditRecord) -> RecordOut:
    return RecordOut(
        index=value.index,
        time=log.format_time(value.time),
        event=value.event,
        actor=value.actor,
        subject=value.subject,
        data=value.data,
        leaf_hash=_b64(value.leaf_hash()),
    )


@router.get("/head", summary="Current tree size, root and latest checkpoint")
def head(session: ReadSession, _reader: Reader) -> HeadOut:
    """The size and root now (computed from the stored frontier) and the latest signed checkpoint."""
    current = log.tree_head(session)
    latest = checkpoints.latest_checkpoint(session)
    return HeadOut(
        size=current.size,
        root=_b64(current.root),
        latest_checkpoint=None if latest is None else _checkpoint(latest),
    )


@router.get(
    "/public-key", summary="The checkpoint signing key (public)", dependencies=[Depends(PublicLimiter)]
)
def public_key(settings: AppSettings) -> PublicKeyOut:
    """The public half of the checkpoint key; 404 when none is configured."""
    signer = _signer(settings, "show the checkpoint key", NotFoundError)
    return PublicKeyOut(origin=signer.origin, key_id=signer.key_id, public_key_pem=signer.public_key_pem())


@router.get("/records", summary="Records, by subject and/or event")
def list_records(
    session: ReadSession,
    _reader: Reader,
    subject: Annotated[str | None, Query(min_length=1, max_length=SUBJECT_LENGTH)] = None,
    event: Annotated[str | None, Query(min_length=1, max_length=EVENT_LENGTH)] = None,
    start: Annotated[int, Query(ge=0, le=_MAX_INDEX, description="First index (without filters).")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RecordOut]:
    """Records oldest first: of one subject and/or event, else from index ``start``."""
    if subject is None and event is None:
        found = list(log.iter_records(session, start, start + limit, batch=limit))
    else:
        found = log.find_records(session, subject=subject, event=event, limit=limit)
    return [_record(record) for record in found]


@router.get("/records/{index}", summary="One record")
def get_record(index: Index, session: ReadSession, _reader: Reader) -> RecordOut:
    """Record ``index``; 404 when there is none."""
    return _record(log.get_record(session, index))


@router.get("/checkpoints", summary="Signed checkpoints")
def list_checkpoints(
    session: ReadSession,
    _reader: Reader,
    offset: Annotated[int, Query(ge=0, le=_MAX_INDEX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CheckpointOut]:
    """Checkpoints, smallest size first."""
    return [_checkpoint(c) for c in checkpoints.list_checkpoints(session, limit=limit, offset=offset)]


@router.post("/checkpoints", status_code=201, summary="Sign a checkpoint of the whole log now")
def create_checkpoint(session: WriteSession, settings: AppSettings, signer: Signer) -> CheckpointOut:
    """Sign (or return the existing) checkpoint of the current size; 409 for an empty log or no key."""
    _signer(settings, "sign a checkpoint", ConflictError)
    return _checkpoint(checkpoints.make_checkpoint(session, settings, actor=signer.actor))


@router.get("/proofs/inclusion", summary="Inclusion proof of a record")
def inclusion_proof(
    session: ReadSession,
    _reader: Reader,
    index: Annotated[int, Query(ge=0, le=_MAX_INDEX)],
    size: SizeQuery = None,
) -> InclusionProofOut:
    """RFC 9162 §2.1.3 proof that record ``index`` is in the tree of ``size``; 404 when it is not."""
    tree = log.root_at(session, size)
    proof = log.inclusion_proof(session, index, tree.size)
    return InclusionProofOut(
        index=index,
        tree_size=tree.size,
        root=_b64(tree.root),
        leaf_hash=_b64(log.leaf_hash_at(session, index)),
        proof=[_b64(h) for h in proof],
    )


@router.get("/proofs/consistency", summary="Consistency proof between two tree sizes")
def consistency_proof(
    session: ReadSession,
    _reader: Reader,
    size1: Annotated[int, Query(ge=1, le=_MAX_INDEX)],
    size2: SizeQuery = None,
) -> ConsistencyProofOut:
    """RFC 9162 §2.1.4 proof that the tree of ``size1`` is a prefix of that of ``size2``."""
    second = log.root_at(session, size2)
    first = log.root_at(session, size1)
    proof = log.consistency_proof(session, first.size, second.size)
    return ConsistencyProofOut(
        size1=first.size,
        root1=_b64(first.root),
        size2=second.size,
        root2=_b64(second.root),
        proof=[_b64(h) for h in proof],
    )


@router.get("/verify", summary="Re-check the whole log")
def verify(session: ReadSession, settings: AppSettings, _reader: Reader) -> VerifyOut:
    """Recompute every leaf, node and checkpoint root; name the first record edited, deleted or reordered."""
    key = checkpoints.signer_from_settings(settings).public_key if checkpoints.has_signer(settings) else None
    if key is None and checkpoints.latest_checkpoint(session) is not None:
        raise ConflictError("cannot check the checkpoints' signatures: no audit checkpoint key is configured")
    report = verify_log(session, public_key=key, key_name=settings.audit_origin)
    data: dict[str, Any] = report.to_json()
    data["root"] = _b64(report.root)
    return VerifyOut.model_validate(data)


@router.get(
    "/export",
    summary="Export bundle (zip) for an inspector",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def export(
    session: ReadSession,
    settings: AppSettings,
    _reader: Reader,
    subject: Annotated[str | None, Query(min_length=1, max_length=SUBJECT_LENGTH)] = None,
) -> Response:
    """The bundle of ``synthguard audit export`` as a zip, against the latest signed checkpoint.

    409 when there is no checkpoint yet or no key is configured; 404 for a subject without records.
    """
    _signer(settings, "export", ConflictError)
    with tempfile.TemporaryDirectory(prefix="sg-export-") as folder:
        target = Path(folder) / "audit-bundle.zip"
        export_bundle(session, settings, target, subject=subject, checkpoint_now=False)
        content = target.read_bytes()
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="audit-bundle.zip"'},
    )
