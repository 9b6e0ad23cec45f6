"""``synthguard library``: each command, the database options, exit statuses 0/1/2, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from synthguard.cli.library import library_app
from tests.store import backends, database_url

# The lead mounts library_app on the main app as ``library``; the same here, without main.py.
app = typer.Typer()
app.add_typer(library_app, name="library")

CSV = (
    "term,category,action,match,reason\n"
    "口交,A1.6,block,,obscene\n"
    "路口交通,A1.6,allow,,a road\n"
    "黄片,A1.6,review,default|repeat,obscene\n"
)


@pytest.fixture(params=backends())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(str(request.param), tmp_path) as url:
        yield url


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    base: dict[str, str | None] = {"SYNTHGUARD_DATABASE_URL": None, "SYNTHGUARD_CONFIG": None}
    return CliRunner().invoke(app, ["library", *args], env={**base, **(env or {})})


def lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_import_list_coverage_and_the_two_person_rule(database: str, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(CSV, encoding="utf-8")
    done = run("import", str(path), "--proposed-by", "alice", "--database", database)
    assert done.exit_code == 0, done.output
    assert "3 entries added (0 approved)" in done.stdout
    listed = lines(run("list", "--json", "--database", database))
    assert {e["state"] for e in listed} == {"proposed"} and len(listed) == 3
    ids = [str(e["id"]) for e in listed]

    refused = run("approve", *ids, "--by", "alice", "--database", database)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("UsageError: ")
    approved = run("approve", *ids, "--by", "bob", "--database", database)
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.count("active (approved by bob)") == 3

    active = lines(run("list", "--state", "active", "--category", "a1.6", "--json", "--database", database))
    assert sorted(e["term"] for e in active) == ["口交", "路口交通", "黄片"]
    report = json.loads(run("coverage", "--json", "--database", database).stdout)
    a16 = next(c for c in report["categories"] if c["category"] == "A1.6")
    assert (a16["active"], a16["required"], a16["missing"]) == (2, 200, 198)  # the allow phrase is no keyword
    assert report["total"] == 2 and report["ok"] is False
    table = run("coverage", "--database", database)
    assert table.exit_code == 0 and "A1.6" in table.stdout and "shortfall" in table.stdout


def test_rejected_rows_exit_1_with_their_lines_and_import_nothing(database: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("term,category,action\n好,A1.6,block\n坏,A9.9,block\n差,A1.6,zap\n", encoding="utf-8")
    done = run("import", str(path), "--proposed-by", "alice", "--approved-by", "bob", "--database", database)
    assert done.exit_code == 1
    errors = done.stderr.splitlines()
    assert errors[0].startswith(f"{path}:3: category 'A9.9'")
    assert errors[1].startswith(f"{path}:4: action 'zap'")
    assert errors[-1] == "nothing imported: 2 row(s) rejected"
    assert lines(run("list", "--json", "--database", database)) == []
    as_json = run("import", str(path), "--json", "--proposed-by", "alice", "--database", database)
    assert as_json.exit_code == 1
    assert [r["line"] for r in json.loads(as_json.stdout)["rejected"]] == [3, 4]


def test_disable_enable_history_and_snapshot(database: str, tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"id": "k1", "term": "毒品", "category": "A1.8", "action": "block"}]))
    assert (
        run(
            "import", str(path), "--proposed-by", "alice", "--approved-by", "bob", "--database", database
        ).exit_code
        == 0
    )
    missing_reason = run("disable", "k1", "--by", "carol", "--database", database)
    assert missing_reason.exit_code == 2
    off = run("disable", "k1", "--by", "carol", "--reason", "false positive", "--database", database)
    assert off.exit_code == 0 and "disabled (false positive)" in off.stdout
    again = run("disable", "k1", "--by", "carol", "--reason", "x", "--database", database)
    assert again.exit_code == 2 and "disabled already" in again.stderr
    assert run("enable", "k1", "--by", "dave", "--database", database).stdout.strip() == "k1: active"
    history = lines(run("history", "k1", "--json", "--database", database))
    assert [(h["kind"], h["actor"]) for h in history] == [
        ("create", "alice"),
        ("disable", "carol"),
        ("enable", "dave"),
    ]
    assert history[1]["note"] == "false positive"
    human = run("history", "k1", "--database", database)
    assert human.exit_code == 0 and "disable" in human.stdout
    made = run("snapshot", "--label", "week 23", "--by", "erin", "--database", database)
    assert made.exit_code == 0 and made.stdout.startswith("v1: 1 active entries, sha256 ")
    unknown = run("history", "k9", "--database", database)
    assert unknown.exit_code == 2 and unknown.stderr.strip() == "UsageError: no library entry 'k9'"


def test_export_then_import_elsewhere_gives_the_same_entries(database: str, tmp_path: Path) -> None:
    source = tmp_path / "list.csv"
    source.write_text(CSV, encoding="utf-8")
    run("import", str(source), "--proposed-by", "alice", "--approved-by", "bob", "--database", database)
    for fmt in ("csv", "json"):
        exported = tmp_path / f"export.{fmt}"
        done = run("export", str(exported), "--database", database)
        assert done.exit_code == 0 and "3 entries written" in done.stderr
        other = f"sqlite:///{tmp_path / fmt / 'other.db'}"
        assert run("import", str(exported), "--proposed-by", "zed", "--database", other).exit_code == 0
        again = tmp_path / f"again.{fmt}"
        run("export", str(again), "--format", fmt, "--database", other)
        assert again.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8")
    to_stdout = run("export", "-", "--format", "json", "--database", database)
    assert [e["term"] for e in json.loads(to_stdout.stdout)] == [
        e["term"] for e in json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    ]


def test_the_database_comes_from_the_environment_or_the_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(CSV, encoding="utf-8")
    data_dir = tmp_path / "nested" / "data"
    done = run("import", str(path), "--proposed-by", "a", env={"SYNTHGUARD_DATA_DIR": str(data_dir)})
    assert done.exit_code == 0, done.output
    assert (data_dir / "synthguard.db").is_file()
    url = f"sqlite:///{tmp_path / 'env.db'}"
    assert run("import", str(path), "--proposed-by", "a", env={"SYNTHGUARD_DATABASE_URL": url}).exit_code == 0
    assert len(lines(run("list", "--json", "--database", url))) == 3
    # --database wins over the environment.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert lines(run("list", "--json", "--database", other, env={"SYNTHGUARD_DATABASE_URL": url})) == []


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    cases = [
        (["import", str(tmp_path / "none.csv"), "--database", db], "no such file"),
        (["import", str(tmp_path / "x.txt"), "--database", db], "--format"),
        (["export", str(tmp_path / "x.csv"), "--format", "xml", "--database", db], "unknown format"),
        (["list", "--state", "sleeping", "--database", db], "unknown state"),
        (["list", "--database", "nosuch://x"], "ConfigError"),
    ]
    for args, expected in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.stderr and result.stderr.count("\n") == 1, (args, result.stderr)
    assert run("approve", "k1", "--database", db).exit_code == 2  # --by is required


def test_review_with_the_database_records_every_hit(database: str, tmp_path: Path) -> None:
    from synthguard.cli.review import review_app
    from synthguard.review.library import HitRecorder
    from synthguard.store import open_store

    path = tmp_path / "list.csv"
    path.write_text(CSV, encoding="utf-8")
    done = run("import", str(path), "--proposed-by", "alice", "--approved-by", "bob", "--database", database)
    assert done.exit_code == 0, done.output
    both = typer.Typer()
    both.add_typer(review_app, name="review")
    reviewed = CliRunner().invoke(
        both,
        ["review", "text", "路口交通很顺畅，这是口交", "--json", "--database", database],
        env={"SYNTHGUARD_DATABASE_URL": None, "SYNTHGUARD_CONFIG": None},
    )
    assert reviewed.exit_code == 0, reviewed.output
    decision = json.loads(reviewed.stdout)
    assert decision["verdict"] == "block" and not decision["sample_library"]
    with open_store(database) as store:
        hits = HitRecorder(store).hits()
    assert [(h.entry_id, h.subject) for h in hits] == [(decision["matches"][0]["entry_id"], "cli:text")]
