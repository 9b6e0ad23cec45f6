"""Reports to the cyberspace administration and other authorities (Deep Synthesis Provisions Art. 10,
11): a case with its evidence, the measures taken and when, exported as JSON and as a printable PDF.

A report (``RPT-2026-000001``) names the authority, a title and a summary, and is made of items:
disposal measures (with their appeals), strikes, complaints, rumors (with refutation, linked library
entries and every occurrence) and review hits. ``export`` assembles the case from the records as one
JSON document with a ``timeline`` of every dated step, sorted. ``submit`` freezes a report: the
canonical JSON as submitted (sorted keys, UTF-8) and its SHA-256 are stored, later exports return
exactly that document, and no item can be added.

PDF (``render_pdf``): written with fpdf2 (pure Python; pikepdf cannot lay out text). A report in
Latin-1 text uses the PDF core font Helvetica and embeds nothing; any other character needs a
TrueType font with CJK glyphs, embedded as a subset: ``report_cjk_font``, else WenQuanYi Micro Hei
or Noto Sans CJK where installed, else ``ConfigError`` naming the package to install. The PDF's text
is extractable (tests read it back with pypdf).

Complainants' contacts stay masked in exports (data minimisation: the authorities can ask for
more); description texts are included, being the substance of the complaint.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, UsageError
from synthguard.governance import complaints, disposal, rumors
from synthguard.governance.case_models import (
    AppealRow,
    ReportItemKind,
    ReportItemRow,
    ReportRow,
    ReportState,
    StrikeRow,
    aware_now,
    check_text,
    next_number,
)
from synthguard.store.models import ReviewHitRow

__all__ = [
    "CJK_FONT_CANDIDATES",
    "Report",
    "add_item",
    "create_report",
    "export",
    "export_json",
    "get_report",
    "list_reports",
    "render_pdf",
    "submit",
]

#: Fonts with CJK glyphs looked for when ``report_cjk_font`` is empty (first found wins).
CJK_FONT_CANDIDATES: Final = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
FORMAT: Final = "synthguard-report/1"
MAX_ITEMS: Final = 1000
MAX_TEXT: Final = 20_000
MAX_LIMIT: Final = 500


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    id: int
    number: str
    authority: str
    title: str
    summary: str
    state: ReportState
    created_at: dt.datetime
    created_by: str
    submitted_at: dt.datetime | None
    submitted_by: str | None
    authority_ref: str | None
    submitted_digest: str | None
    items: tuple[tuple[ReportItemKind, str], ...]


def _row(session: Session, number: str, *, lock: bool = False) -> ReportRow:
    query = sa.select(ReportRow).where(ReportRow.number == number)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFoundError(f"no report {number[:40]}")
    return row


def _view(session: Session, row: ReportRow) -> Report:
    items = session.execute(
        sa.select(ReportItemRow.kind, ReportItemRow.ref)
        .where(ReportItemRow.report_id == row.id)
        .order_by(ReportItemRow.kind, ReportItemRow.ref)
    ).all()
    return Report(
        row.id, row.number, row.authority, row.title, row.summary, ReportState(row.state), row.created_at,
        row.created_by, row.submitted_at, row.submitted_by, row.authority_ref, row.submitted_digest,
        tuple((ReportItemKind(k), r) for k, r in items),
    )  # fmt: skip


def _actor(actor: str) -> str:
    return check_text("actor", actor, max_length=128, line=True)


def create_report(
    session: Session,
    *,
    authority: str,
    title: str,
    summary: str,
    actor: str,
    items: Iterable[tuple[ReportItemKind | str, str | int]] = (),
    now: dt.datetime | None = None,
) -> Report:
    """Open a draft report for ``authority``, with ``items`` ((kind, reference) pairs)."""
    now = aware_now(now)
    row = ReportRow(
        number=f"RPT-{now.year}-{next_number(session, f'report:{now.year}'):06d}",
        authority=check_text("authority", authority, max_length=500, line=True),
        title=check_text("title", title, max_length=500, line=True),
        summary=check_text("summary", summary, max_length=MAX_TEXT),
        state=ReportState.DRAFT.value,
        created_at=now,
        created_by=_actor(actor),
        submitted_at=None,
        submitted_by=None,
        authority_ref=None,
        submitted_content=None,
        submitted_digest=None,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="report.created",
        actor=row.created_by,
        subject=f"report:{row.number}",
        data={"authority": row.authority, "title": row.title},
    )
    for kind, ref in items:
        add_item(session, row.number, kind, ref, actor=actor, now=now)
    return _view(session, row)


def _check_item(session: Session, kind: ReportItemKind, ref: str) -> str:
    """The canonical reference of an existing record; ``NotFoundError`` when there is none."""
    if kind is ReportItemKind.COMPLAINT:
        return complaints.get_complaint(session, ref).tracking_number
    try:
        number = int(ref)
    except ValueError:
        raise UsageError(f"a {kind.value} is referred to by its number, got {ref[:40]!r}") from None
    if kind is ReportItemKind.MEASURE:
        disposal.get_measure(session, number)
    elif kind is ReportItemKind.STRIKE:
        if session.get(StrikeRow, number) is None:
            raise NotFoundError(f"no strike {number}")
    elif kind is ReportItemKind.RUMOR:
        rumors.get_rumor(session, number)
    elif session.get(ReviewHitRow, number) is None:
        raise NotFoundError(f"no review hit {number}")
    return str(number)


def add_item(
    session: Session,
    number: str,
    kind: ReportItemKind | str,
    ref: str | int,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> Report:
    """Add a record to a draft report (``ConflictError`` once submitted or when already there)."""
    now = aware_now(now)
    try:
        kind = ReportItemKind(kind)
    except ValueError:
        raise UsageError(f"item kind must be one of {', '.join(ReportItemKind)}") from None
    row = _row(session, number, lock=True)
    if row.state != ReportState.DRAFT.value:
        raise ConflictError(f"report {row.number} is submitted: it cannot change")
    ref = _check_item(session, kind, str(ref).strip())
    if session.get(ReportItemRow, (row.id, kind.value, ref)) is not None:
        raise ConflictError(f"report {row.number} already holds {kind.value} {ref}")
    count = session.scalar(
        sa.select(sa.func.count()).select_from(ReportItemRow).where(ReportItemRow.report_id == row.id)
    )
    if (count or 0) >= MAX_ITEMS:
        raise UsageError(f"a report holds at most {MAX_ITEMS} items")
    session.add(ReportItemRow(report_id=row.id, kind=kind.value, ref=ref, added_at=now))
    session.flush()
    record_event(
        session,
        event="report.item_added",
        actor=_actor(actor),
        subject=f"report:{row.number}",
        data={"kind": kind.value, "ref": ref},
    )
    return _view(session, row)


def get_report(session: Session, number: str) -> Report:
    return _view(session, _row(session, number))


def list_reports(session: Session, *, limit: int = 100, offset: int = 0) -> list[Report]:
    """Reports, newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    rows = session.scalars(
        sa.select(ReportRow).order_by(ReportRow.id.desc()).limit(limit).offset(max(0, offset))
    )
    return [_view(session, row) for row in rows]


# -- export ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Dataclasses, enums, times, tuples and sets as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def export(session: Session, number: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The report as one JSON-ready document; a submitted report's document as submitted."""
    row = _row(session, number)
    if row.submitted_content is not None:
        document: dict[str, Any] = json.loads(row.submitted_content)
        return document
    return _assemble(session, row, aware_now(now))


def _assemble(session: Session, row: ReportRow, now: dt.datetime) -> dict[str, Any]:
    report = _view(session, row)
    refs: dict[ReportItemKind, list[str]] = {kind: [] for kind in ReportItemKind}
    for kind, ref in report.items:
        refs[kind].append(ref)
    timeline: list[dict[str, Any]] = []

    def step(at: dt.datetime | None, what: str, ref: str) -> None:
        if at is not None:
            timeline.append({"at": _plain(at), "event": what, "record": ref})

    measures = []
    for ref in sorted(refs[ReportItemKind.MEASURE], key=int):
        measure = disposal.get_measure(session, int(ref))
        appeal = session.scalars(sa.select(AppealRow).where(AppealRow.measure_id == measure.id)).one_or_none()
        item = _plain(measure)
        item["appeal"] = _plain(disposal.Appeal.of(appeal)) if appeal is not None else None
        measures.append(item)
        step(measure.imposed_at, f"{measure.kind.value} imposed on {measure.user_ref}", f"measure:{ref}")
        step(measure.lifted_at, "measure lifted", f"measure:{ref}")
        if appeal is not None:
            step(appeal.filed_at, "appeal filed", f"measure:{ref}")
            step(appeal.decided_at, f"appeal {appeal.state}", f"measure:{ref}")
    strikes = []
    for ref in sorted(refs[ReportItemKind.STRIKE], key=int):
        strike_row = session.get(StrikeRow, int(ref))
        if strike_row is None:  # pragma: no cover - checked when added; rows are never deleted
            raise NotFoundError(f"no strike {ref}")
        strike = disposal.Strike.of(strike_row)
        strikes.append(_plain(strike))
        step(strike.at, f"strike against {strike.user_ref} ({strike.risk or strike.kind})", f"strike:{ref}")
    complaint_items = []
    for ref in sorted(refs[ReportItemKind.COMPLAINT]):
        complaint = complaints.get_complaint(session, ref)
        complaint_items.append(_plain(complaint))
        for event in complaint.events:
            step(event.at, f"complaint {event.to_state.value}", f"complaint:{ref}")
    rumor_items = []
    for ref in sorted(refs[ReportItemKind.RUMOR], key=int):
        rumor = rumors.get_rumor(session, int(ref))
        item = _plain(rumor)
        item["occurrences"] = _plain(rumors.list_occurrences(session, rumor.id, limit=rumors.MAX_LIMIT))
        rumor_items.append(item)
        step(rumor.refutation.refuted_at, "rumor refuted", f"rumor:{ref}")
        step(rumor.created_at, "rumor recorded", f"rumor:{ref}")
    hits = []
    for ref in sorted(refs[ReportItemKind.REVIEW_HIT], key=int):
        hit = session.get(ReviewHitRow, int(ref))
        if hit is None:  # pragma: no cover
            raise NotFoundError(f"no review hit {ref}")
        hits.append(
            {
                "id": hit.id, "at": _plain(hit.at), "subject": hit.subject, "entry_id": hit.entry_id,
                "kind": hit.kind, "category": hit.category, "verdict": hit.verdict,
                "library_version": hit.library_version, "start": hit.start_offset, "end": hit.end_offset,
                "distance": hit.distance, "score": hit.score,
            }
        )  # fmt: skip
        step(hit.at, f"review hit of entry {hit.entry_id}", f"review_hit:{ref}")
    timeline.sort(key=lambda s: (s["at"], s["record"], s["event"]))
    return {
        "format": FORMAT,
        "report": {
            "number": report.number, "authority": report.authority, "title": report.title,
            "summary": report.summary, "state": report.state.value, "created_at": _plain(report.created_at),
            "created_by": report.created_by, "submitted_at": _plain(report.submitted_at),
            "submitted_by": report.submitted_by, "authority_ref": report.authority_ref,
        },
        "generated_at": _plain(now),
        "measures": measures,
        "strikes": strikes,
        "complaints": complaint_items,
        "rumors": rumor_items,
        "review_hits": hits,
        "timeline": timeline,
    }  # fmt: skip


def export_json(document: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an export: sorted keys, no spaces, UTF-8, one trailing newline."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def submit(
    session: Session,
    number: str,
    *,
    actor: str,
    authority_ref: str | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Freeze a draft report as submitted: its export and SHA-256 are kept (``ConflictError`` twice)."""
    now = aware_now(now)
    actor = _actor(actor)
    row = _row(session, number, lock=True)
    if row.state != ReportState.DRAFT.value:
        raise ConflictError(f"report {row.number} is already submitted")
    row.state = ReportState.SUBMITTED.value
    row.submitted_at = now
    row.submitted_by = actor
    row.authority_ref = (
        check_text("authority_ref", authority_ref, max_length=200, line=True) if authority_ref else None
    )
    session.flush()
    content = export_json(_assemble(session, row, now))
    row.submitted_content = content.decode()
    row.submitted_digest = hashlib.sha256(content).hexdigest()
    session.flush()
    record_event(
        session,
        event="report.submitted",
        actor=actor,
        subject=f"report:{row.number}",
        data={"sha256": row.submitted_digest, "authority_ref": row.authority_ref},
    )
    return _view(session, row)


# -- PDF ---------------------------------------------------------------------------------------


def _find_font(settings: Settings | None) -> Path | None:
    configured = settings.report_cjk_font if settings is not None else ""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"report_cjk_font {configured} is not a file")
        return path
    return next((Path(p) for p in CJK_FONT_CANDIDATES if Path(p).is_file()), None)


def _lines(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(style, text) lines: ``h1``, ``h2``, ``kv`` (key: value) and ``p``."""
    report = document["report"]
    out: list[tuple[str, str]] = [("h1", f"{report['number']}: {report['title']}")]
    for key in (
        "authority",
        "state",
        "created_at",
        "created_by",
        "submitted_at",
        "submitted_by",
        "authority_ref",
    ):
        if report.get(key) is not None:
            out.append(("kv", f"{key}: {report[key]}"))
    out.append(("kv", f"generated_at: {document['generated_at']}"))
    out += [("h2", "Summary"), ("p", report["summary"])]
    sections = (("measures", "Measures taken"), ("strikes", "Strikes"), ("complaints", "Complaints"),
                ("rumors", "Rumors and refutations"), ("review_hits", "Review hits"))  # fmt: skip
    for key, heading in sections:
        if document.get(key):
            out.append(("h2", f"{heading} ({len(document[key])})"))
            for item in document[key]:
                out += _flatten(item)
                out.append(("p", ""))
    out.append(("h2", "Timeline"))
    out += [("kv", f"{s['at']}  {s['record']}  {s['event']}") for s in document["timeline"]]
    return out


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        lines: list[tuple[str, str]] = []
        for key, item in value.items():
            lines += _flatten(item, f"{prefix}{key}.")
        return lines
    if isinstance(value, list):
        if all(not isinstance(v, Mapping | list) for v in value):
            return [("kv", f"{prefix.rstrip('.')}: {', '.join(str(v) for v in value)}")]
        lines = []
        for index, item in enumerate(value):
            lines += _flatten(item, f"{prefix}{index}.")
        return lines
    return [("kv", f"{prefix.rstrip('.')}: {'' if value is None else value}")]


def render_pdf(document: Mapping[str, Any], *, settings: Settings | None = None) -> bytes:
    """A printable A4 PDF of an export (``export``'s document)."""
    try:
        from fpdf import FPDF
        from fpdf.enums import WrapMode, XPos, YPos
    except ImportError:  # pragma: no cover - fpdf2 is a dependency
        raise ConfigError("PDF reports need the fpdf2 package: pip install fpdf2") from None
    lines = _lines(document)
    needs_font = any(not text.isascii() and any(ord(ch) > 0xFF for ch in text) for _, text in lines)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(f"{document['report']['number']}")
    pdf.set_creator("synthguard")
    if needs_font:
        font = _find_font(settings)
        if font is None:
            raise ConfigError(
                "the report holds Chinese (or other non-Latin) text and no CJK font was found: install "
                "fonts-wqy-microhei (apt-get install fonts-wqy-microhei) or set report_cjk_font"
            )
        pdf.add_font("cjk", "", str(font))
        family = "cjk"
    else:
        family = "helvetica"
    pdf.add_page()
    sizes = {"h1": 15, "h2": 12, "kv": 9, "p": 10}
    for style, text in lines:
        pdf.set_font(family, size=sizes[style])
        if style in ("h1", "h2"):
            pdf.ln(2)
        pdf.multi_cell(
            0, sizes[style] * 0.5, text or " ", new_x=XPos.LMARGIN, new_y=YPos.NEXT, wrapmode=WrapMode.CHAR
        )
    data: bytes = bytes(pdf.output())
    return data
