"""``synthguard audit``: each command, exit statuses 0/1/2, on a SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

from synthguard.audit import record_event
from synthguard.cli.audit import audit_app
from synthguard.store import open_store

app = typer.Typer()
app.add_typer(audit_app, name="audit")


def _env(tmp_path: Path, key: Path | None = None) -> dict[str, str | None]:
    return {
        "SYNTHGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'audit.db'}",
        "SYNTHGUARD_CONFIG": None,
        "SYNTHGUARD_AUDIT_CHECKPOINT_KEY": None,
        "SYNTHGUARD_AUDIT_CHECKPOINT_KEY_FILE": None if key is None else str(key),
        "SYNTHGUARD_AUDIT_CHECKPOINT_INTERVAL": "3",
    }


def run(tmp_path: Path, *args: str, key: Path | None = None) -> Result:
    return CliRunner().invoke(app, ["audit", *args], env=_env(tmp_path, key))


def _fill(tmp_path: Path, count: int) -> None:
    with open_store(f"sqlite:///{tmp_path / 'db' / 'audit.db'}") as store:
        store.upgrade()
        with store.session(write=True) as session:
            for n in range(count):
                record_event(
                    session, event="report.filed", actor="user:cco", subject=f"report:{n}", data={"n": n}
                )


def test_keygen_checkpoint_verify_export_and_verify_bundle(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "audit.pem"
    assert run(tmp_path, "keygen", str(key)).exit_code == 0
    assert key.stat().st_mode & 0o777 == 0o600 and Path(f"{key}.pub").is_file()
    assert run(tmp_path, "keygen", str(key)).exit_code == 2
    _fill(tmp_path, 7)
    result = run(tmp_path, "checkpoint", "--due", "--json", key=key)
    assert result.exit_code == 0, result.output
    assert [c["size"] for c in json.loads(result.stdout)] == [3, 6]
    result = run(tmp_path, "checkpoint", key=key)
    assert result.exit_code == 0 and result.stdout.startswith("synthguard/audit\n7\n")
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["size"] == 7 and status["latest_checkpoint"]["size"] == 7
    result = run(tmp_path, "verify", key=key)
    assert result.exit_code == 0 and "VERIFIED" in result.stdout, result.output
    proof = json.loads(run(tmp_path, "proof", "2", "--size", "6", "--json").stdout)
    assert proof["tree_size"] == 6 and len(proof["proof"]) == 3
    consistency = json.loads(run(tmp_path, "consistency", "3", "--size2", "7", "--json").stdout)
    assert consistency["size1"] == 3 and consistency["proof"]
    result = run(tmp_path, "export", str(tmp_path / "bundle"), key=key)
    assert result.exit_code == 0, result.output
    result = run(tmp_path, "verify-bundle", str(tmp_path / "bundle"), "--public-key", f"{key}.pub")
    assert result.exit_code == 0 and "VERIFIED" in result.stdout, result.output
    result = run(tmp_path, "verify-bundle", str(tmp_path / "bundle"), "--json")
    assert json.loads(result.stdout)["ok"] is True


def test_verify_names_the_edited_record_and_exits_1(tmp_path: Path) -> None:
    _fill(tmp_path, 5)
    connection = sqlite3.connect(tmp_path / "db" / "audit.db")
    with connection:
        connection.execute("UPDATE audit_records SET subject = 'report:x' WHERE idx = 3")
    connection.close()
    result = run(tmp_path, "verify")
    assert result.exit_code == 1
    assert "first problem at record 3 (edited)" in result.stdout
    report = json.loads(run(tmp_path, "verify", "--json").stdout)
    assert report["ok"] is False and report["first_problem"]["index"] == 3


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    _fill(tmp_path, 2)
    result = run(tmp_path, "checkpoint")
    assert result.exit_code == 2 and "no audit checkpoint key" in result.output
    assert run(tmp_path, "consistency", "0").exit_code == 2
    assert run(tmp_path, "proof", "9").exit_code == 1  # not found
    assert run(tmp_path, "verify-bundle", str(tmp_path / "nothing")).exit_code == 2
