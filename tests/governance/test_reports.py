"""Reports to the authorities (Art. 10, 11): assembled, frozen on submission, exported as JSON and PDF."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest

from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, UsageError
from synthguard.governance import complaints, disposal, reports, rumors
from synthguard.store import Store
from synthguard.store.models import LibraryEntryRow, ReviewHitRow
from tests.governance import rows
from tests.governance.rows import rumor_entry
from tests.store import backends, migrated_store

T0 = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
SETTINGS = Settings()
CLAIM = "本市自来水检测出致癌物质"


def library_entry(entry_id: str) -> LibraryEntryRow:
    return rumor_entry(entry_id, at=T0, term=CLAIM)


def review_hit(entry_id: str, subject: str) -> ReviewHitRow:
    return rows.review_hit(entry_id, subject, at=T0)


@pytest.fixture(scope="module", params=backends())
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with migrated_store(request.param, tmp_path_factory.mktemp("reports")) as opened:
        with opened.session(write=True) as session:
            session.add(library_entry("rumor-r"))
        yield opened


@pytest.fixture(scope="module")
def case(store: Store) -> dict[str, str]:
    """A measure (with an appeal), a complaint, a rumor with an occurrence, a review hit."""
    with store.session(write=True) as session:
        outcome = disposal.record_strike(
            session,
            user_ref="u-r",
            kind="output",
            risk="A1.7",
            reason="spread the rumor",
            actor="user:alice",
            evidence={"review_hit_ids": [1]},
            settings=SETTINGS,
            now=T0,
        )
        assert outcome.measure is not None
        disposal.file_appeal(session, outcome.measure.id, statement="not me", actor="user:carol", now=T0)
        filed = complaints.file_complaint(
            session,
            SETTINGS,
            category="rumor",
            target="https://v.example/9",
            description="谣言视频",
            contact="13800000000",
            now=T0,
        )
        rumor = rumors.record_rumor(
            session,
            claim=CLAIM,
            refutation_title="辟谣",
            refutation_text="自来水安全",
            refutation_source="水务局",
            refutation_url="https://example.gov.cn/n",
            refuted_at=T0,
            actor="user:alice",
            entry_ids=["rumor-r"],
            now=T0,
        )
        rumors.add_occurrence(
            session, rumor.id, produce_id="0000000000000abc", location="https://v.example/9", actor="user:a"
        )
        hit = review_hit("rumor-r", "request-9")
        session.add(hit)
        session.flush()
        return {
            "measure": str(outcome.measure.id),
            "strike": str(outcome.strike.id),
            "complaint": filed.complaint.tracking_number,
            "rumor": str(rumor.id),
            "review_hit": str(hit.id),
        }


def test_report_assembles_the_case_with_a_sorted_timeline(store: Store, case: dict[str, str]) -> None:
    with store.session(write=True) as session:
        report = reports.create_report(
            session,
            authority="市网信办",
            title="谣言传播处置报告",
            summary="用户传播已辟谣信息，已处置。",
            actor="user:alice",
            items=list(case.items()),
            now=T0 + dt.timedelta(hours=1),
        )
        assert report.number.startswith("RPT-2026-") and len(report.items) == 5
        document = reports.export(session, report.number, now=T0 + dt.timedelta(hours=2))
    assert document["format"] == "synthguard-report/1"
    assert document["measures"][0]["appeal"]["statement"] == "not me"
    assert document["complaints"][0]["contact"] == "1*********0"  # masked for the authorities too
    assert document["rumors"][0]["occurrences"][0]["produce_id"] == "0000000000000abc"
    assert document["rumors"][0]["entries"] == [["rumor-r", CLAIM]]
    assert document["review_hits"][0]["entry_id"] == "rumor-r"
    times = [s["at"] for s in document["timeline"]]
    assert times == sorted(times) and len(times) >= 6
    json.loads(reports.export_json(document))


def test_submission_freezes_the_report(store: Store, case: dict[str, str]) -> None:
    with store.session(write=True) as session:
        report = reports.create_report(
            session, authority="CAC", title="t", summary="s", actor="user:a", now=T0
        )
        reports.add_item(session, report.number, "measure", case["measure"], actor="user:a")
        with pytest.raises(ConflictError):
            reports.add_item(session, report.number, "measure", case["measure"], actor="user:a")
        with pytest.raises(NotFoundError):
            reports.add_item(session, report.number, "measure", "999999", actor="user:a")
        with pytest.raises(NotFoundError):
            reports.add_item(session, report.number, "complaint", "SG-2000-000001", actor="user:a")
        with pytest.raises(UsageError):
            reports.add_item(session, report.number, "strike", "one", actor="user:a")
        with pytest.raises(UsageError):
            reports.add_item(session, report.number, "person", "1", actor="user:a")
        submitted = reports.submit(session, report.number, actor="user:b", authority_ref="CAC-7", now=T0)
        with pytest.raises(ConflictError):
            reports.submit(session, report.number, actor="user:b")
        with pytest.raises(ConflictError):
            reports.add_item(session, report.number, "rumor", case["rumor"], actor="user:a")
        frozen = reports.export(session, report.number)
    assert hashlib.sha256(reports.export_json(frozen)).hexdigest() == submitted.submitted_digest
    assert frozen["report"]["state"] == "submitted" and frozen["report"]["authority_ref"] == "CAC-7"
    # later changes to the records do not change what was submitted
    with store.session(write=True) as session:
        disposal.lift_measure(
            session, int(case["measure"]), actor="user:c", reason="later", now=T0 + dt.timedelta(days=1)
        )
        assert reports.export(session, report.number) == frozen
        assert reports.get_report(session, report.number).state.value == "submitted"
        assert report.number in [r.number for r in reports.list_reports(session)]


def test_pdf_has_extractable_text_in_chinese_and_in_latin(store: Store, case: dict[str, str]) -> None:
    with store.session(write=True) as session:
        report = reports.create_report(
            session,
            authority="市网信办",
            title="谣言传播处置报告",
            summary="已辟谣",
            actor="user:alice",
            items=[("rumor", case["rumor"]), ("complaint", case["complaint"])],
        )
        chinese = reports.export(session, report.number)
        latin = reports.create_report(
            session, authority="CAC", title="Latin only", summary="s", actor="user:a"
        )
        plain = reports.export(session, latin.number)
    for document, expected in (
        (chinese, ["谣言传播处置报告", "水务局", report.number]),
        (plain, ["Latin only"]),
    ):
        data = reports.render_pdf(document, settings=SETTINGS)
        assert data.startswith(b"%PDF-")
        text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
        for word in expected:
            assert word in text.replace("\n", "")


def test_pdf_without_a_cjk_font_is_a_clear_error(tmp_path: Path) -> None:
    document = {
        "report": {"number": "RPT-1", "title": "中文", "summary": ""},
        "generated_at": "",
        "timeline": [],
    }
    missing = dataclasses.replace(SETTINGS, report_cjk_font=str(tmp_path / "none.ttf"))
    with pytest.raises(ConfigError, match="report_cjk_font"):
        reports.render_pdf(document, settings=missing)


def test_cli_exports_a_report_and_shows_clocks_and_restrictions(
    store: Store, case: dict[str, str], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from synthguard.cli.main import app

    with store.session(write=True) as session:
        number = reports.create_report(
            session,
            authority="CAC",
            title="CLI",
            summary="s",
            actor="user:a",
            items=[("measure", case["measure"])],
        ).number
        digest = reports.submit(session, number, actor="user:a").submitted_digest
    env = {"SYNTHGUARD_DATABASE_URL": store.url.render_as_string(hide_password=False)}
    runner = CliRunner()
    target = tmp_path / "report.json"
    done = runner.invoke(app, ["cases", "export", number, "-o", str(target)], env=env)
    assert done.exit_code == 0, done.output
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    done = runner.invoke(app, ["cases", "export", number, "-o", str(tmp_path / "r.pdf"), "--pdf"], env=env)
    assert done.exit_code == 0 and (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
    missing = runner.invoke(app, ["cases", "export", "RPT-1999-000001", "-o", str(tmp_path / "x")], env=env)
    assert missing.exit_code == 1 and not (tmp_path / "x").exists()
    clocks = runner.invoke(app, ["cases", "clocks", "--json"], env=env)
    # the case's complaint was filed in June 2026 and never acknowledged: overdue by now
    assert clocks.exit_code == 3 and case["complaint"] in clocks.stdout
    assert json.loads(clocks.stdout)[0]["status"] == "overdue"
    shown = runner.invoke(app, ["cases", "restrictions", "u-r", "--json"], env=env)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["user_ref"] == "u-r"
