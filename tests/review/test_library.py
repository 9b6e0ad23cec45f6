"""The characteristics database: procedure, two-person rule, switches, times, import/export,
snapshots, coverage, hot reload and the record of hits; on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa

from synthguard.config import Settings
from synthguard.errors import UsageError
from synthguard.review import library_loader
from synthguard.review.engine import (
    CompiledLibrary,
    Decision,
    FrameMatch,
    Reviewer,
    TextDecision,
    Verdict,
    VideoDecision,
)
from synthguard.review.images import Dihedral, PdqHash
from synthguard.review.keywords import Action
from synthguard.review.library import (
    ChangeKind,
    EntryKind,
    EntryState,
    FileFormat,
    HitRecorder,
    Library,
    LibraryPolicy,
    LibraryWatcher,
    format_match,
    load_compiled_library,
    parse_match,
)
from synthguard.review.normalize import DEFAULT_STEPS, Normalization
from synthguard.review.risks import LibraryMinimums, RiskCategory
from synthguard.review.rumors import RefutationNotice
from synthguard.samples import sample_path
from synthguard.store import Store
from synthguard.store.models import LibraryChangeRow
from tests.store import backends, migrated_store

T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
HASH_A = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
CLAIM = "本市自来水检测出致癌物质，市民千万不要饮用"
NOTICE = RefutationNotice("n1", "Tap water is safe", "https://example.org/n1", "2025-01-02")


@pytest.fixture(params=backends())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with migrated_store(str(request.param), tmp_path) as made:
        yield made


@pytest.fixture
def library(store: Store) -> Library:
    return Library(store)


def scan_ids(compiled: CompiledLibrary, text: str) -> list[str]:
    return [m.entry_id for m in compiled.keywords.scan(text)]


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# -- the procedure -------------------------------------------------------------------------------


def test_a_proposal_becomes_active_only_when_a_second_person_approves(library: Library) -> None:
    entry = library.propose("口交", "A1.6", "block", actor="alice", reason="obscene", source="staff", now=T0)
    assert entry.state is EntryState.PROPOSED and entry.proposer == "alice" and entry.approver is None
    assert scan_ids(library.compile(T0), "口 交") == []
    with pytest.raises(UsageError, match="second person"):
        library.approve([entry.id], "alice", now=T0)
    assert library.get(entry.id).state is EntryState.PROPOSED
    [approved] = library.approve([entry.id], "bob", now=T0 + HOUR)
    assert approved.state is EntryState.ACTIVE
    assert approved.approver == "bob" and approved.approved_at == T0 + HOUR
    assert scan_ids(library.compile(T0 + HOUR), "口 交") == [entry.id]
    with pytest.raises(UsageError, match="not proposed"):
        library.approve([entry.id], "carol")


def test_every_change_is_logged_with_who_when_and_before_after(library: Library) -> None:
    entry = library.propose("黄片", "A1.6", "review", actor="alice", now=T0)
    library.approve([entry.id], "bob", now=T0 + HOUR)
    library.disable(entry.id, "carol", "false positive in 三黄片", now=T0 + 2 * HOUR)
    library.enable(entry.id, "dave", now=T0 + 3 * HOUR)
    history = library.history(entry.id)
    assert [(c.kind, c.actor, c.at) for c in history] == [
        (ChangeKind.CREATE, "alice", T0),
        (ChangeKind.APPROVE, "bob", T0 + HOUR),
        (ChangeKind.DISABLE, "carol", T0 + 2 * HOUR),
        (ChangeKind.ENABLE, "dave", T0 + 3 * HOUR),
    ]
    assert history[0].before is None and history[0].after is not None
    assert history[0].after["term"] == "黄片" and history[0].after["state"] == "proposed"
    assert [(c.before or {}).get("state") for c in history[1:]] == ["proposed", "active", "disabled"]
    assert [(c.after or {}).get("state") for c in history[1:]] == ["active", "disabled", "active"]
    assert history[2].note == "false positive in 三黄片"
    assert history[1].after is not None and history[1].after["approver"] == "bob"
    with pytest.raises(UsageError, match="no library entry"):
        library.history("kw-missing")


def test_bulk_approval_is_all_or_nothing(library: Library) -> None:
    first = library.propose("毒品", "A1.8", actor="alice", now=T0)
    second = library.propose("冰毒", "A1.8", actor="bob", now=T0)
    with pytest.raises(UsageError, match="second person"):
        library.approve([first.id, second.id], "bob", now=T0)
    with pytest.raises(UsageError, match="no library entry"):
        library.approve([first.id, "kw-nope"], "carol", now=T0)
    assert {e.state for e in library.entries()} == {EntryState.PROPOSED}
    approved = library.approve([first.id, second.id], "carol", now=T0)
    assert [e.state for e in approved] == [EntryState.ACTIVE, EntryState.ACTIVE]
    batches = {c.batch for e in approved for c in library.history(e.id) if c.kind is ChangeKind.APPROVE}
    assert len(batches) == 1 and None not in batches


def test_the_two_person_rule_is_a_policy_and_is_checked_again_when_compiling(store: Store) -> None:
    relaxed = Library(store, policy=LibraryPolicy(require_second_approver=False))
    entry = relaxed.propose("赌博", "A1.8", actor="alice", now=T0)
    relaxed.approve([entry.id], "alice", now=T0)
    assert scan_ids(relaxed.compile(T0), "赌博") == [entry.id]
    strict = Library(store)
    assert strict.state_of(strict.get(entry.id), T0) is EntryState.PROPOSED
    assert scan_ids(strict.compile(T0), "赌博") == []


def test_disable_switches_one_entry_off_without_deleting_it(library: Library) -> None:
    keep = library.propose("毒品", "A1.8", actor="alice", now=T0)
    off = library.propose("三黄片", "A1.6", actor="alice", now=T0)
    library.approve([keep.id, off.id], "bob", now=T0)
    assert sorted(scan_ids(library.compile(T0), "毒品 三黄片")) == sorted([keep.id, off.id])
    with pytest.raises(UsageError, match="why"):
        library.disable(off.id, "carol", "  ", now=T0)
    disabled = library.disable(off.id, "carol", "medicine name", now=T0)
    assert disabled.state is EntryState.DISABLED and disabled.disabled_reason == "medicine name"
    assert scan_ids(library.compile(T0), "毒品 三黄片") == [keep.id]
    assert library.get(off.id).term == "三黄片"  # still there
    assert [e.id for e in library.entries(state="disabled")] == [off.id]
    with pytest.raises(UsageError, match="disabled already"):
        library.disable(off.id, "carol", "again", now=T0)
    enabled = library.enable(off.id, "dave", now=T0)
    assert enabled.state is EntryState.ACTIVE and enabled.disabled_reason is None
    with pytest.raises(UsageError, match="not disabled"):
        library.enable(off.id, "dave", now=T0)
    # An entry switched off before any approval comes back as a proposal.
    pending = library.propose("大麻", "A1.8", actor="alice", now=T0)
    library.disable(pending.id, "bob", "duplicate", now=T0)
    assert library.enable(pending.id, "bob", now=T0).state is EntryState.PROPOSED


def test_effective_and_lapse_times_come_from_the_clock_and_refresh_persists_them(library: Library) -> None:
    entry = library.propose(
        "暴恐",
        "A1.4",
        actor="alice",
        effective_from=T0 + 2 * HOUR,
        lapses_at=T0 + 10 * HOUR,
        now=T0,
    )
    [approved] = library.approve([entry.id], "bob", now=T0 + HOUR)
    assert approved.state is EntryState.APPROVED
    assert scan_ids(library.compile(T0 + HOUR), "暴恐") == []
    assert scan_ids(library.compile(T0 + 2 * HOUR), "暴恐") == [entry.id]  # computed, not stored
    assert library.get(entry.id).state is EntryState.APPROVED
    assert [e.id for e in library.entries(state="active", now=T0 + 3 * HOUR)] == [entry.id]
    assert [e.state for e in library.refresh(T0 + 3 * HOUR)] == [EntryState.ACTIVE]
    assert library.refresh(T0 + 4 * HOUR) == []
    assert scan_ids(library.compile(T0 + 10 * HOUR), "暴恐") == []
    assert [e.state for e in library.refresh(T0 + 11 * HOUR)] == [EntryState.LAPSED]
    kinds = [(c.kind, c.actor) for c in library.history(entry.id)]
    assert kinds[-2:] == [(ChangeKind.ACTIVATE, "system"), (ChangeKind.LAPSE, "system")]
    with pytest.raises(UsageError, match="later than"):
        library.propose("x", "A1.4", actor="a", effective_from=T0, lapses_at=T0, now=T0)


def test_times_must_be_timezone_aware(library: Library) -> None:
    with pytest.raises(UsageError, match="timezone-aware"):
        library.compile(dt.datetime(2025, 1, 1))


def test_image_and_rumor_entries_compile_into_their_indexes(library: Library) -> None:
    image = library.propose(HASH_A.upper(), "A1.6", "block", kind="image", quality=90, actor="alice", now=T0)
    rumor = library.propose(CLAIM, "A1.7", "review", kind="rumor", refutation=NOTICE, actor="alice", now=T0)
    assert image.term == HASH_A and image.quality == 90
    library.approve([image.id, rumor.id], "bob", now=T0)
    compiled = library.compile(T0)
    found = compiled.images.query(PdqHash.from_hex(HASH_A, quality=100))
    assert [m.entry_id for m in found.matches] == [image.id]
    text = "转发周知！市民千萬不要飲用自來水，本市自来水检测出致癌物质。"
    [hit] = compiled.rumors.match(text)
    assert hit.entry_id == rumor.id and hit.notice == NOTICE
    with pytest.raises(UsageError, match="does not apply"):
        library.propose(HASH_A, "A1.6", "mask", kind="image", actor="alice")
    with pytest.raises(UsageError, match="refutation"):
        library.propose(CLAIM + "！", "A1.7", "review", kind="rumor", actor="alice")


# -- import --------------------------------------------------------------------------------------


def test_a_vetted_csv_list_with_a_bulk_approval_is_active_at_once(library: Library) -> None:
    data = csv_bytes(
        "term,category,action,match,reason,source",
        "黄片,A1.6,review,default|repeat,obscene,weekly list",
        "三黄片,a1.6,allow,,medicine,weekly list",
        'ass,A1.6,mask,"nfkc,case",,',
    )
    report = library.import_bytes(data, "csv", "alice", approved_by="bob", now=T0)
    assert report.ok and (report.added, report.approved, report.unchanged) == (3, 3, 0)
    entries = library.entries()
    assert {e.state for e in entries} == {EntryState.ACTIVE}
    assert {(e.proposer, e.approver) for e in entries} == {("alice", "bob")}
    by_term = {e.term: e for e in entries}
    assert by_term["黄片"].match == DEFAULT_STEPS | {Normalization.REPEAT}
    assert by_term["ass"].match == frozenset({Normalization.NFKC, Normalization.CASE})
    assert by_term["三黄片"].action is Action.ALLOW and by_term["三黄片"].category is RiskCategory.A1_6
    compiled = library.compile(T0)
    assert scan_ids(compiled, "三黄片 黄黄片 ASS class") == [by_term["黄片"].id, by_term["ass"].id]
    notes = {c.note for e in entries for c in library.history(e.id)}
    assert notes == {"bulk approval by bob"}
    # The same file again changes nothing; without the approval, rows stay proposals.
    again = library.import_bytes(data, "csv", "alice", approved_by="bob", now=T0)
    assert again.ok and (again.added, again.unchanged, again.batch) == (0, 3, None)
    fresh = library.import_bytes(csv_bytes("term,category,action", "赌博,A1.8,block"), "csv", "alice")
    assert fresh.approved == 0
    assert library.entries(state="proposed")[0].term == "赌博"


def test_invalid_rows_are_reported_by_line_and_nothing_is_imported(library: Library) -> None:
    counter = library.change_counter()
    data = csv_bytes(
        "term,category,action,match,effective_from,lapses_at",  # 1
        "好词,A1.6,block,,,",  # 2: fine
        "坏类,A9.9,block,,,",  # 3
        "动作,A1.6,zap,,,",  # 4
        '"多行',  # 5: a quoted term over two lines, fine
        '词",A1.6,block,,,',  # 6
        ",A1.6,block,,,",  # 7: empty term
        "步骤,A1.6,block,pinyin|initials,,",  # 8
        "步骤2,A1.6,block,nfkc|sparkle,,",  # 9
        "!!!,A1.6,block,,,",  # 10: nothing left after strip
        "妈妈,A1.6,block,default|repeat,,",  # 11: doubled character with repeat
        "日期,A1.6,block,,yesterday,",  # 12
        "先后,A1.6,block,,2025-02-01,2025-01-01",  # 13
        "好词,A1.6,block,,,",  # 14: same generated id as line 2
        "少,A1.6",  # 15: too few fields
    )
    report = library.import_bytes(data, "csv", "alice", approved_by="bob", now=T0)
    assert not report.ok and report.added == 0
    assert [e.line for e in report.rejected] == [3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    messages = {e.line: e.message for e in report.rejected}
    assert "A9.9" in messages[3] and "zap" in messages[4] and "term is empty" in messages[7]
    assert "exclude each other" in messages[8] and "sparkle" in messages[9]
    assert "normalises to nothing" in messages[10] and "doubled" in messages[11]
    assert "ISO 8601" in messages[12] and "later than" in messages[13]
    assert "repeats line 2" in messages[14] and "fields" in messages[15]
    assert library.entries() == [] and library.change_counter() == counter


def test_file_level_problems_are_reported_at_their_line(library: Library) -> None:
    def lines(data: bytes, fmt: str = "csv") -> list[tuple[int, str]]:
        report = library.import_bytes(data, fmt, "alice")
        return [(e.line, e.message) for e in report.rejected]

    [(line, message)] = lines(csv_bytes("term,category,action,colour", "a,A1.6,block,red"))
    assert line == 1 and "unknown column 'colour'" in message
    [(line, message)] = lines(csv_bytes("term,action", "a,block"))
    assert line == 1 and "'category'" in message
    [(line, message)] = lines(b"term,category,action\nok,A1.6,block\n\xff\xfe,A1.6,block\n")
    assert line == 3 and "UTF-8" in message
    [(line, message)] = lines(b"")
    assert line == 1 and "empty" in message
    [(line, message)] = lines(b'[\n {"term": "a",\n  "category": "A1.6"\n  "action": "block"}\n]', "json")
    assert line == 4 and "not valid JSON" in message
    [(line, message)] = lines(b'{"name": "x"}', "json")
    assert "entries" in message
    assert library.entries() == []


def test_json_imports_as_a_list_or_as_the_sample_library_object(library: Library) -> None:
    listed = [
        {"term": "口交", "category": "A1.6", "action": "block", "match": ["default", "homophone"]},
        {"kind": "image", "term": HASH_A, "category": "A1.6", "action": "block", "quality": 80},
    ]
    report = library.import_bytes(json.dumps(listed).encode(), "json", "alice", approved_by="bob", now=T0)
    assert report.ok and report.added == 2
    document = {
        "name": "sample",
        "entries": [{"id": "k-gamble", "term": "赌博", "category": "A1.8", "action": "review"}],
        "images": [{"hash": "0" * 63 + "1", "category": "A1.6", "action": "review"}],
        "rumors": [
            {
                "id": "r1",
                "claim": CLAIM,
                "category": "A1.7",
                "action": "review",
                "refutation": NOTICE.to_dict(),
            }
        ],
    }
    report = library.import_bytes(
        json.dumps(document, ensure_ascii=False).encode(), "json", "alice", approved_by="bob"
    )
    assert report.ok and report.added == 3
    rumor = library.get("r1")
    assert rumor.kind is EntryKind.RUMOR and rumor.refutation == NOTICE
    assert library.get("k-gamble").action is Action.REVIEW
    assert {e.kind for e in library.entries(kind="image")} == {EntryKind.IMAGE}
    bad = (
        "{\n"
        '  "entries": [\n'
        '    {"term": "好", "category": "A1.6", "action": "block"},\n'  # line 3
        '    {"term": "坏", "category": "A1.6", "action": "block", "colour": 1},\n'  # line 4
        '    {"term": "数", "category": 16, "action": "block"}\n'  # line 5
        "  ],\n"
        '  "rumors": [\n'
        '    {"claim": "短", "category": "A1.7", "action": "review"}\n'  # line 8
        "  ]\n"
        "}\n"
    )
    report = library.import_bytes(bad.encode(), "json", "alice")
    assert [(e.line, e.message.split(" ")[0]) for e in report.rejected] == [
        (4, "unknown"),
        (5, "category"),
        (8, "a"),
    ]


def test_an_existing_id_with_other_content_is_a_conflict(library: Library) -> None:
    library.import_bytes(csv_bytes("id,term,category,action", "k1,赌博,A1.8,block"), "csv", "alice")
    report = library.import_bytes(csv_bytes("id,term,category,action", "k1,赌博,A1.8,review"), "csv", "alice")
    assert [(e.line, e.entry_id) for e in report.rejected] == [(2, "k1")]
    assert "action differ" in report.rejected[0].message
    assert library.get("k1").action is Action.BLOCK


def test_import_approval_by_the_proposer_is_refused_per_row(library: Library) -> None:
    data = csv_bytes("term,category,action,proposer", "甲,A1.6,block,", "乙,A1.6,block,bob")
    report = library.import_bytes(data, "csv", "alice", approved_by="bob")
    assert [e.line for e in report.rejected] == [3]
    assert library.entries() == []


def _populate(library: Library) -> None:
    library.import_bytes(
        csv_bytes(
            "id,term,category,action,match,reason,source,effective_from,lapses_at",
            'k1,"带,逗号",A1.6,block,default|pinyin,"reason, with comma",src,,',
            "k2,ass,A1.6,mask,nfkc|case,,,2025-06-01T10:00:00+08:00,2026-01-01",
            "k3,三黄片,A1.6,allow,none,,,,",
        ),
        "csv",
        "alice",
        approved_by="bob",
        now=T0,
    )
    library.propose(HASH_A, "A1.6", "review", kind="image", quality=77, actor="carol", now=T0)
    rumor = library.propose(CLAIM, "A1.7", "block", kind="rumor", refutation=NOTICE, actor="carol", now=T0)
    library.approve([rumor.id], "dave", now=T0)
    library.disable("k3", "erin", "too broad", now=T0)
    library.propose("多行\n词", "A2.5", "review", actor="frank", now=T0)


@pytest.mark.parametrize("fmt", list(FileFormat))
def test_export_then_import_gives_the_same_entries(library: Library, tmp_path: Path, fmt: FileFormat) -> None:
    _populate(library)
    path = tmp_path / f"library.{fmt.value}"
    assert library.export(path, now=T0) == 6
    with migrated_store("sqlite", tmp_path / "other") as other_store:
        other = Library(other_store)
        report = other.import_file(path, "importer", now=T0)
        assert report.ok and report.added == 6
        assert other.export_records(T0) == library.export_records(T0)
        # Importing one's own export changes nothing.
        assert library.import_file(path, "importer", now=T0).unchanged == 6
        assert other.compile(T0).version == library.compile(T0).version


def test_a_csv_export_never_hands_a_spreadsheet_a_formula(library: Library, tmp_path: Path) -> None:
    library.propose("=HYPERLINK(1)", "A1.6", "block", reason="@SUM(A1)", source="-2+3", actor="a", now=T0)
    library.propose("'=quoted", "A1.6", "block", actor="a", now=T0)
    path = tmp_path / "library.csv"
    library.export(path, now=T0)
    text = path.read_text(encoding="utf-8")
    assert "'=HYPERLINK(1)" in text and "'@SUM(A1)" in text and "'-2+3" in text
    assert "''=quoted" in text
    cells = [cell for line in text.splitlines()[1:] for cell in line.split(",")]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    with migrated_store("sqlite", tmp_path / "other") as other_store:
        other = Library(other_store)
        assert other.import_file(path, "importer", now=T0).added == 2
        assert {e.term for e in other.entries()} == {"=HYPERLINK(1)", "'=quoted"}
        assert other.export_records(T0) == library.export_records(T0)


def test_match_names_round_trip() -> None:
    for text, steps in [
        ("default", DEFAULT_STEPS),
        ("none", frozenset()),
        ("", DEFAULT_STEPS),
        ("default|initials", DEFAULT_STEPS | {Normalization.INITIALS}),
        ("case , nfkc", frozenset({Normalization.CASE, Normalization.NFKC})),
    ]:
        assert parse_match(text) == steps
        assert parse_match(format_match(steps)) == steps
    with pytest.raises(UsageError):
        parse_match("none|case")


# -- versions ------------------------------------------------------------------------------------


def test_snapshots_freeze_the_active_set_and_stamp_compiled_versions(library: Library) -> None:
    _populate(library)
    unsnapped = library.compile(T0).version
    assert unsnapped.startswith("sha256:")
    first = library.snapshot("week 23", "alice", now=T0)
    assert first.version == "v1" and first.entry_count == 3  # k1, k2 (effective 02:00Z), the rumor
    content = json.dumps(
        sorted(library.snapshot_records("v1"), key=lambda r: r["id"]),
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    assert hashlib.sha256(content.encode()).hexdigest() == first.digest == unsnapped.removeprefix("sha256:")
    assert library.compile(T0).version == "v1"
    library.disable("k1", "bob", "retired", now=T0)
    assert library.compile(T0).version.startswith("sha256:")
    second = library.snapshot("after retiring k1", "alice", now=T0)
    assert second.version == "v2" and second.digest != first.digest
    assert library.compile(T0).version == "v2"
    # A past version can be rebuilt to re-check a decision made with it.
    old = library.compile_snapshot("v1")
    assert old.version == "v1" and scan_ids(old, "带逗号") == ["k1"]
    assert scan_ids(library.compile(T0), "带逗号") == []
    assert [s.version for s in library.snapshots()] == ["v1", "v2"]
    with library.store.session() as session:
        logged = session.scalars(sa.select(LibraryChangeRow).where(LibraryChangeRow.kind == "snapshot")).all()
    assert [(row.actor, row.note) for row in logged] == [("alice", "week 23"), ("alice", "after retiring k1")]
    with pytest.raises(UsageError, match="no snapshot"):
        library.snapshot_records("v9")


# -- coverage ------------------------------------------------------------------------------------


def test_coverage_counts_active_keywords_per_risk_against_the_minimums(store: Store) -> None:
    minimums = LibraryMinimums(per_a1_risk=2, per_a2_risk=1, total=4)
    library = Library(store, policy=LibraryPolicy(minimums=minimums))
    rows = ["term,category,action"]
    rows += [f"a1-{code}-{k},A1.{code},block" for code in range(1, 9) for k in range(2)]
    rows += [f"a2-{code},A2.{code},review" for code in range(1, 9)]  # A2.9 missing
    rows += ["allowed,A2.9,allow"]  # an allow-list phrase is no keyword
    library.import_bytes(csv_bytes(*rows), "csv", "alice", approved_by="bob", now=T0)
    library.propose("pending,", "A2.9", actor="alice", now=T0)
    report = library.coverage(T0)
    by_code = {c.category.value: c for c in report.categories}
    assert by_code["A1.3"].active == 2 and by_code["A1.3"].missing == 0
    assert (by_code["A2.9"].active, by_code["A2.9"].pending, by_code["A2.9"].missing) == (0, 1, 1)
    assert by_code["A3.1"].required == 0
    assert report.total == 24 and not report.ok
    assert report.shortfalls == ("A2.9: 0 keywords, at least 1",)
    assert report.to_dict()["categories"][16]["missing"] == 1
    full = Library(store).coverage(T0)  # the TC260-003 figures (verify)
    assert full.total_required == 10_000 and len(full.shortfalls) == 17 + 1


# -- hot reload ----------------------------------------------------------------------------------


class PausingReviewer:
    """A reviewer that can be paused in the middle of a review; each review takes the current
    library when it starts, as ``engine.Reviewer`` does."""

    def __init__(self) -> None:
        self.library: CompiledLibrary | None = None
        self.swaps = 0

    def swap(self, library: CompiledLibrary) -> None:
        self.library = library
        self.swaps += 1

    def review(
        self, text: str, pause: threading.Event | None = None, resume: threading.Event | None = None
    ) -> list[str]:
        library = self.library
        assert library is not None
        if pause is not None and resume is not None:
            pause.set()
            assert resume.wait(10)
        return scan_ids(library, text)


def test_the_watcher_swaps_in_a_new_library_when_the_database_changes(library: Library) -> None:
    reviewer = PausingReviewer()
    clock = [T0]
    watcher = LibraryWatcher(library, reviewer, clock=lambda: clock[0])
    first = watcher.reload_if_changed()
    assert first is not None and reviewer.swaps == 1 and watcher.current is first
    assert watcher.reload_if_changed() is None and reviewer.swaps == 1
    entry = library.propose("毒品", "A1.8", actor="alice", now=T0)
    library.approve([entry.id], "bob", now=T0)

    # A review in progress keeps the library it started with; the next one sees the new entry.
    paused, resume = threading.Event(), threading.Event()
    results: list[list[str]] = []
    worker = threading.Thread(target=lambda: results.append(reviewer.review("毒品", paused, resume)))
    worker.start()
    assert paused.wait(10)
    second = watcher.reload_if_changed()
    assert second is not None and second is not first and reviewer.swaps == 2
    assert reviewer.review("毒品") == [entry.id]
    resume.set()
    worker.join(10)
    assert results == [[]]

    # A change that leaves the active set as it is swaps nothing; a time passing is a change,
    # though nothing was written.
    later = library.propose("冰毒", "A1.8", actor="alice", effective_from=T0 + HOUR, now=T0)
    library.approve([later.id], "bob", now=T0)
    assert watcher.reload_if_changed() is None and reviewer.swaps == 2
    assert reviewer.review("冰毒") == []
    clock[0] = T0 + HOUR
    assert watcher.reload_if_changed() is not None and reviewer.swaps == 3
    assert reviewer.review("冰毒") == [later.id]
    # A snapshot changes the version (a digest becomes v1): reviews must report the snapshot id.
    library.snapshot("week 23", "carol", now=T0 + HOUR)
    swapped = watcher.reload_if_changed()
    assert swapped is not None and swapped.version == "v1"


def test_the_watcher_runs_until_stopped(library: Library) -> None:
    reviewer = PausingReviewer()
    watcher = LibraryWatcher(library, reviewer)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop, 0.01))
    thread.start()
    try:
        entry = library.propose("毒品", "A1.8", actor="alice")
        library.approve([entry.id], "bob")
        for _ in range(1000):
            if reviewer.library is not None and scan_ids(reviewer.library, "毒品"):
                break
            stop.wait(0.01)
        assert reviewer.library is not None and scan_ids(reviewer.library, "毒品") == [entry.id]
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_export_to_a_stream_needs_a_format(library: Library) -> None:
    buffer = io.StringIO()
    with pytest.raises(UsageError, match="format"):
        library.export(buffer)
    assert library.export(buffer, "csv") == 0
    assert buffer.getvalue().startswith("id,kind,term,category,action,match")


# -- with the engine -----------------------------------------------------------------------------


class BlockingSink:
    """A sink that holds the first decision it is given until released (a review in progress)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.decisions: list[Decision] = []

    def record(self, decision: Decision, *, subject: str) -> None:
        first = not self.decisions
        self.decisions.append(decision)
        if first:
            self.entered.set()
            assert self.release.wait(10)


def test_a_reviewer_keeps_its_library_for_a_review_in_flight_while_the_watcher_swaps(
    library: Library,
) -> None:
    first = library.propose("毒品", "A1.8", actor="alice", now=T0)
    library.approve([first.id], "bob", now=T0)
    sink = BlockingSink()
    reviewer = Reviewer(library.compile(T0), sink=sink)
    watcher = LibraryWatcher(library, reviewer, clock=lambda: T0)
    watcher.reload_if_changed()
    old_version = reviewer.library.version
    in_flight: list[TextDecision] = []
    worker = threading.Thread(target=lambda: in_flight.append(reviewer.review_text("毒品 冰毒")))
    worker.start()
    assert sink.entered.wait(10)
    second = library.propose("冰毒", "A1.8", actor="alice", now=T0)
    library.approve([second.id], "bob", now=T0)
    assert watcher.reload_if_changed() is not None
    after = reviewer.review_text("毒品 冰毒")
    sink.release.set()
    worker.join(10)
    [before] = in_flight
    assert [m.entry_id for m in before.keyword_matches] == [first.id]
    assert before.library_version == old_version
    assert [m.entry_id for m in after.keyword_matches] == [first.id, second.id]
    assert after.library_version != old_version


def test_every_hit_is_recorded_with_entry_category_subject_version_and_offsets(library: Library) -> None:
    sample_hash = "f0dbe11459aba1d470e3d9a91f212ec3a6d45b3bcd1c3632a0dc51bb6374ae44"
    data = csv_bytes(
        "id,kind,term,category,action,quality,refutation_title,refutation_url",
        "k-drug,keyword,毒品,A1.8,block,,,",
        "k-ass,keyword,ass,A1.6,mask,,,",
        f"i-demo,image,{sample_hash},A4.2,block,91,,",
        f"r-water,rumor,{CLAIM},A1.7,review,,Tap water is safe,https://example.org/n1",
    )
    assert library.import_bytes(data, "csv", "alice", approved_by="bob", now=T0).ok
    library.snapshot("for the records", "carol", now=T0)
    clock = [T0 + HOUR]
    recorder = HitRecorder(library.store, clock=lambda: clock[0])
    reviewer = Reviewer(library.compile(T0), sink=recorder)
    text = "他 买 毒品，ASS！转发：市民千萬不要飲用自來水，本市自来水检测出致癌物质。"
    decision = reviewer.review_text(text, subject="request-1")
    reviewer.review_text("nothing to see here", subject="request-2")  # no match: no record
    clock[0] = T0 + 2 * HOUR
    image = reviewer.review_image(sample_path(), subject="upload-7")
    assert image.verdict.value == "block"
    hits = recorder.hits()
    assert [(h.subject, h.entry_id, h.kind) for h in hits] == [
        ("request-1", "k-drug", EntryKind.KEYWORD),
        ("request-1", "k-ass", EntryKind.KEYWORD),
        ("request-1", "r-water", EntryKind.RUMOR),
        ("upload-7", "i-demo", EntryKind.IMAGE),
    ]
    drug, ass, rumor, demo = hits
    assert {h.library_version for h in hits} == {"v1"}
    assert (drug.category, drug.action, drug.verdict, drug.at) == (
        RiskCategory.A1_8,
        Action.BLOCK,
        "block",
        T0 + HOUR,
    )
    assert text[drug.start or 0 : drug.end] == "毒品" and text[ass.start or 0 : ass.end] == "ASS"
    assert ass.verdict == "mask" and ass.detail == {"normalizations": ["case"]}
    assert rumor.score is not None and rumor.score >= 0.4 and rumor.category is RiskCategory.A1_7
    assert rumor.start is not None and rumor.end is not None and "自来水" in text[rumor.start : rumor.end]
    assert (demo.distance, demo.start, demo.at) == (0, None, T0 + 2 * HOUR)
    assert (demo.category, demo.action) == (RiskCategory.A4_2, Action.BLOCK)  # looked up in the library
    assert [m.entry_id for m in decision.keyword_matches] == ["k-drug", "k-ass"]
    assert [h.entry_id for h in recorder.hits(subject="upload-7")] == ["i-demo"]
    assert len(recorder.hits(since=T0 + 2 * HOUR)) == 1
    assert recorder.hits(entry_id="k-drug")[0].to_dict()["category"] == "A1.8"


def test_video_decisions_are_recorded_per_entry_with_the_frame_time(library: Library) -> None:
    recorder = HitRecorder(library.store, clock=lambda: T0)
    decision = VideoDecision(
        verdict=Verdict.BLOCK,
        matches=(FrameMatch("i-unknown", 7, Dihedral.ORIGINAL, 12.5),),
        frames=30,
        low_quality_frames=0,
        max_distance=31,
        library_version="file:sha256:0123",
        elapsed_ms=1.0,
    )
    recorder.record(decision, subject="clip.mp4")
    [hit] = recorder.hits()
    assert (hit.entry_id, hit.distance, hit.category, hit.verdict) == ("i-unknown", 7, None, "block")
    assert hit.detail == {"variant": Dihedral.ORIGINAL.value, "time": 12.5}
    long_subject = "x" * 1000
    recorder.record(decision, subject=long_subject)
    assert len(recorder.hits(subject=long_subject)) == 1


def test_the_bundled_sample_library_imports_and_compiles_like_the_loader(library: Library) -> None:
    sample = resources.files("synthguard.review").joinpath("sample_library.json").read_bytes()
    report = library.import_bytes(sample, "json", "importer", approved_by="reviewer", now=T0)
    assert report.ok, report.rejected
    loaded = library_loader.load_sample()
    compiled = library.compile(T0)
    assert len(compiled.keywords) == len(loaded.keywords) and len(compiled.rumors) == len(loaded.rumors)
    assert len(compiled.images) == len(loaded.images)
    text = "路口交通 口交 三黄片 黄片 市民近期千万不要直接饮用自来水，本市自来水厂检测出致癌物质超标"
    assert [m.entry_id for m in compiled.keywords.scan(text)] == [
        m.entry_id for m in loaded.keywords.scan(text)
    ]
    assert [m.entry_id for m in compiled.rumors.match(text)] == [
        m.entry_id for m in loaded.rumors.match(text)
    ]


def test_the_review_commands_load_the_store_library(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'review.db'}")
    assert load_compiled_library(settings) is None  # no tables: the loader falls back to the sample
    with migrated_store("sqlite", tmp_path) as store:
        url = store.url.render_as_string(hide_password=False)
        settings = Settings(database_url=url)
        assert library_loader.load(settings).sample  # empty store: the sample
        library = Library(store)
        entry = library.propose("毒品", "A1.8", actor="alice")
        library.approve([entry.id], "bob")
        compiled = library_loader.load(settings)
        assert not compiled.sample and compiled.version.startswith("sha256:")
        assert [m.entry_id for m in compiled.keywords.scan("毒品")] == [entry.id]
