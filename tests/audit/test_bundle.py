"""Export bundles: the standalone verifier accepts a genuine bundle and names each kind of tampering."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthguard.audit import checkpoints, inspector, record_event
from synthguard.audit.bundle import export_bundle
from synthguard.config import Settings
from synthguard.errors import ConflictError, IntegrityError, NotFoundError, UsageError
from synthguard.store import Store
from tests.store import migrated_store


def _fill(store: Store, settings: Settings, count: int = 10) -> None:
    with store.session(write=True) as session:
        for n in range(count):
            record_event(
                session,
                event="complaint.filed" if n % 2 else "identity.verified",
                actor="public" if n % 2 else "system",
                subject=f"complaint:SG-{n % 4}",
                data={"n": n, "名字": "张*"},
                settings=settings,
            )


def _export(store: Store, settings: Settings, target: Path, **options: object) -> None:
    with store.session(write=True) as session:
        export_bundle(session, settings, target, **options)  # type: ignore[arg-type]


def _rewrite_manifest(bundle: Path) -> None:
    """What a forger would do after editing a file: fix the digests (only signatures then tell)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def bundle(store: Store, audit_settings: Settings, tmp_path: Path) -> Path:
    _fill(store, audit_settings)
    target = tmp_path / "bundle"
    _export(store, audit_settings, target)
    return target


def _key(settings: Settings) -> bytes:
    return checkpoints.signer_from_settings(settings).public_key


def test_a_genuine_bundle_verifies(bundle: Path, audit_settings: Settings) -> None:
    report = inspector.verify_bundle(bundle, public_key=_key(audit_settings))
    assert report.ok, report.failures
    assert (report.records, report.checkpoints, report.latest_checkpoint, report.proofs) == (10, 3, 10, 10)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["complete"] is True and set(manifest["files"]) >= {
        "records.jsonl",
        "tools/verify_bundle.py",
    }
    assert "python3 tools/verify_bundle.py" in (bundle / "README.md").read_text()


def test_the_bundled_tool_runs_with_the_standard_library_only(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(bundle, copy)
    # -I: isolated (no site-packages, no synthguard, no cryptography): the pure-Python Ed25519 path
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(copy / "tools" / "verify_bundle.py"), str(copy), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_an_edited_record_is_caught_even_with_a_fixed_manifest(
    bundle: Path, audit_settings: Settings
) -> None:
    lines = (bundle / "records.jsonl").read_text().splitlines()
    record = json.loads(lines[6])
    record["data"] = record["data"].replace('"n":6', '"n":60')
    lines[6] = json.dumps(record, ensure_ascii=False)
    (bundle / "records.jsonl").write_text("\n".join(lines) + "\n")
    report = inspector.verify_bundle(bundle, public_key=_key(audit_settings))
    assert any("records.jsonl was changed" in f for f in report.failures)
    _rewrite_manifest(bundle)
    report = inspector.verify_bundle(bundle, public_key=_key(audit_settings))
    assert not report.ok
    assert any("record 6 is NOT in the signed tree" in f for f in report.failures), report.failures


def test_deleted_and_reordered_records_are_caught(bundle: Path, audit_settings: Settings) -> None:
    lines = (bundle / "records.jsonl").read_text().splitlines()
    (bundle / "records.jsonl").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    _rewrite_manifest(bundle)
    report = inspector.verify_bundle(bundle, public_key=_key(audit_settings))
    assert any("record 4 where record 3 was expected" in f for f in report.failures), report.failures
    lines[2], lines[5] = lines[5], lines[2]
    (bundle / "records.jsonl").write_text("\n".join(lines) + "\n")
    _rewrite_manifest(bundle)
    report = inspector.verify_bundle(bundle, public_key=_key(audit_settings))
    assert any("record 5 where record 2 was expected" in f for f in report.failures), report.failures


def test_a_foreign_key_or_forged_checkpoint_is_refused(bundle: Path, audit_settings: Settings) -> None:
    report = inspector.verify_bundle(bundle, public_key=bytes(32))
    assert report.failures == [
        "the bundle's public key is NOT the key you gave: do not trust its checkpoints"
    ]
    lines = (bundle / "checkpoints.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    entry["note"] = entry["note"].replace("\n4\n", "\n3\n")
    lines[0] = json.dumps(entry)
    (bundle / "checkpoints.jsonl").write_text("\n".join(lines) + "\n")
    _rewrite_manifest(bundle)
    report = inspector.verify_bundle(bundle, public_key=_key(audit_settings))
    assert any("not valid" in f for f in report.failures), report.failures


def test_a_partial_export_carries_proofs_for_its_records(
    store: Store, audit_settings: Settings, tmp_path: Path
) -> None:
    _fill(store, audit_settings)
    target = tmp_path / "partial.zip"
    _export(store, audit_settings, target, subject="complaint:SG-1")
    assert zipfile.is_zipfile(target)
    report = inspector.verify_bundle(target, public_key=_key(audit_settings))
    assert report.ok, report.failures
    assert (report.complete, report.records, report.proofs) == (False, 3, 3)


def test_export_refuses_what_it_cannot_vouch_for(
    store: Store, audit_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ConflictError):
        _export(store, audit_settings, tmp_path / "empty")
    _fill(store, audit_settings, 2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="not an empty directory"):
        _export(store, audit_settings, tmp_path / "full")
    with pytest.raises(NotFoundError, match="no record of subject"):
        _export(store, audit_settings, tmp_path / "none", subject="complaint:nobody")


def test_unreadable_bundles_are_bundle_errors(tmp_path: Path) -> None:
    with pytest.raises(inspector.BundleError):
        inspector.verify_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(inspector.BundleError, match="not a"):
        inspector.verify_bundle(tmp_path)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.txt", "x")
    with pytest.raises(inspector.BundleError, match="unsafe"):
        inspector.verify_bundle(evil)


FIELDS = [
    "index",
    "tree_size",
    "proof",
    "size1",
    "size2",
    "note",
    "time",
    "event",
    "actor",
    "subject",
    "data",
    "size",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**70) | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, checkpoint_key_pem: str) -> Path:
    """One genuine bundle (SQLite), copied by each fuzz example."""
    settings = Settings(audit_checkpoint_key=checkpoint_key_pem, audit_checkpoint_interval=4)
    folder = tmp_path_factory.mktemp("pristine")
    with migrated_store("sqlite", folder) as opened:
        _fill(opened, settings, 6)
        _export(opened, settings, folder / "bundle")
    return folder / "bundle"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["records.jsonl", "proofs.jsonl", "consistency.jsonl", "checkpoints.jsonl"]),
    lines=st.lists(JSON_VALUES.map(json.dumps) | st.text(max_size=40), min_size=1, max_size=4),
)
def test_hostile_bundle_files_give_failures_not_crashes(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, name: str, lines: list[str]
) -> None:
    copy = tmp_path_factory.mktemp("fuzz") / "bundle"
    shutil.copytree(pristine, copy)
    with (copy / name).open("a", encoding="utf-8") as handle:
        handle.write("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    _rewrite_manifest(copy)
    report = inspector.verify_bundle(copy)
    assert isinstance(report.ok, bool)


def test_export_refuses_a_log_that_no_longer_matches_its_checkpoint(
    store: Store, audit_settings: Settings, tmp_path: Path
) -> None:
    _fill(store, audit_settings, 8)
    with store.session(write=True) as session:
        session.execute(sa.text("UPDATE audit_records SET actor = 'system' WHERE idx = 3"))
    with pytest.raises(IntegrityError, match="audit verify"):
        _export(store, audit_settings, tmp_path / "out" / "bundle", checkpoint_now=False)
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written is left
