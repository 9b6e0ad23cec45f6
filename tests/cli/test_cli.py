"""The command line contract: outputs, JSON lines, folders, exit statuses 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import PRODUCER, PROPAGATOR


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "SYNTHGUARD_PROVIDER_CODE": PRODUCER,
        "SYNTHGUARD_PROPAGATOR_CODE": PROPAGATOR,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "synthguard", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(root / f"img{i}.jpg", "JPEG")
    Image.new("RGB", (16, 16)).save(root / "sub" / "deep.jpg", "JPEG")
    (root / "sub" / "notes.bin").write_bytes(b"\x00\x01 not media")
    return root


def test_label_detect_relabel_one_file(tmp_path: Path, folder: Path) -> None:
    src, out = folder / "img0.jpg", tmp_path / "out.jpg"
    done = run("label", str(src), "-o", str(out), "--produce-id", "00000000000000AB", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["label"]["ProduceID"] == "00000000000000AB"
    detected = run("detect", str(out), str(src), "--json")
    assert detected.returncode == 0
    lines = [json.loads(line) for line in detected.stdout.splitlines()]
    assert [d["verdict"] for d in lines] == ["1", "none"]
    assert set(lines[0]) >= {"path", "container", "modality", "metadata", "watermark", "visible", "verdict"}
    assert set(lines[0]["metadata"]) >= {"found", "label", "signature"}
    assert set(lines[0]["watermark"]) >= {"found", "produce_id", "p_value"}
    relabeled = run("relabel", str(out), "-o", str(tmp_path / "r.jpg"), "--json")
    assert json.loads(relabeled.stdout)["label"]["ContentPropagator"] == PROPAGATOR
    human = run("detect", str(tmp_path / "r.jpg"))
    assert "jpeg" in human.stdout


def test_folder_with_jobs_reports_failures_and_exits_1(tmp_path: Path, folder: Path) -> None:
    out = tmp_path / "out"
    done = run("label", str(folder), "-o", str(out), "--jobs", "2", "--json")
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 7
    failed = [r for r in records if "error" in r]
    assert len(failed) == 1 and "notes.bin" in failed[0]["path"]
    assert (out / "sub" / "deep.jpg").exists()
    assert "6 done, 1 failed" in done.stderr
    detected = run("detect", str(out), "--json")
    assert detected.returncode == 0
    assert all(json.loads(line)["verdict"] == "1" for line in detected.stdout.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ("label",),
        ("label", "missing.jpg", "-o", "x.jpg"),
        ("label", "x.jpg"),
        ("label", "x.jpg", "-o", "y.jpg", "--kinds", "bogus"),
        ("detect", "--bogus-flag", "x"),
        ("frobnicate",),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-m", "synthguard", *args], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr


def test_unreadable_file_exits_1_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe1\xff\xff")
    done = run("detect", str(bad))
    assert done.returncode == 1
    assert "CorruptMediaError" in done.stderr and "Traceback" not in done.stderr


def test_bad_settings_exit_2(tmp_path: Path, folder: Path) -> None:
    done = run(
        "label",
        str(folder / "img0.jpg"),
        "-o",
        str(tmp_path / "o.jpg"),
        env={"SYNTHGUARD_SIGNING_ALGORITHM": "rsa"},
    )
    assert done.returncode == 2 and "ed25519 or sm2" in done.stderr


def test_keys_generate_and_signed_labels(tmp_path: Path, folder: Path) -> None:
    key = tmp_path / "key.pem"
    done = run("keys", "generate", "--algorithm", "ed25519", "--out", str(key))
    assert done.returncode == 0 and "key_id" in done.stdout
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    env = {"SYNTHGUARD_SIGNING_ALGORITHM": "ed25519", "SYNTHGUARD_SIGNING_KEY_FILE": str(key)}
    out = tmp_path / "signed.jpg"
    assert run("label", str(folder / "img1.jpg"), "-o", str(out), env=env).returncode == 0
    detected = json.loads(run("detect", str(out), "--json", env=env).stdout)
    assert detected["metadata"]["signature"] == "valid"
    untrusted = json.loads(run("detect", str(out), "--json").stdout)
    assert untrusted["metadata"]["signature"] == "invalid"


def test_demo_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "synthguard", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert '"verdict": "1"' in done.stdout and '"signature": "valid"' in done.stdout
