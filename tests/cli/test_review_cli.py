"""``synthguard review``: the JSON contract, --lines over thousands of lines, exit statuses 0/1/2.

The sub-app is mounted on a local Typer app here, so these tests do not depend on where the main
command line registers it.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner, Result

from synthguard.cli.review import review_app
from synthguard.review.normalize import MAX_INPUT_BYTES
from synthguard.samples import sample_path

app = typer.Typer()
app.add_typer(review_app, name="review")

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
BRIDGE = PDQ / "dih" / "bridge-1-original.jpg"
CLAIM = "5G基站的电磁辐射会导致癌症和失眠，小区附近已经有多名老人因此住院"
PARAPHRASE = "據說小區附近已有好幾位老人因此住院！5G基站的電磁輻射會引起癌症和失眠"
LIBRARY = {
    "notice": "test library",
    "format": "synthguard-library/1",
    "entries": [
        {"id": "blk", "term": "黄片", "category": "A1.6", "action": "block"},
        {"id": "allow", "term": "三黄片", "category": "A1.6", "action": "allow"},
        {"id": "rev", "term": "赌博网站", "category": "A1.8", "action": "review"},
        {"id": "msk", "term": "傻逼", "category": "A1.6", "action": "mask"},
    ],
    "rumors": [
        {
            "id": "5g",
            "claim": CLAIM,
            "notice": {
                "id": "n1",
                "title": "辟谣",
                "url": "https://example.org/n1",
                "published": "2025-02-20",
            },
        }
    ],
}
MATCH_KEYS = {"term", "category", "action", "start", "end"}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config file, database or data folder of the developer's is picked up."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SYNTHGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "library.json"
    path.write_text(json.dumps(LIBRARY, ensure_ascii=False), encoding="utf-8")
    return path


def invoke(*args: str | Path, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(app, ["review", *map(str, args)], input=stdin)


def objects(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- review text ---------------------------------------------------------------------------------


def test_text_json_is_one_object_in_the_contract(library: Path) -> None:
    result = invoke("text", "他在看黃 片，你这个傻逼", "--json", "--library", library)
    assert result.exit_code == 0, result.stderr
    (record,) = objects(result)
    assert {"verdict", "matches", "masked"} <= set(record)
    assert record["verdict"] == "block"
    assert record["masked"] == "他在看***，你这个**"
    assert [(m["term"], m["category"], m["action"], m["start"], m["end"]) for m in record["matches"]] == [
        ("黄片", "A1.6", "block", 3, 6),
        ("傻逼", "A1.6", "mask", 10, 12),
    ]
    assert all(set(m) >= MATCH_KEYS for m in record["matches"])
    assert record["matches"][0]["normalizations"] == ["t2s", "strip"]
    assert record["sample_library"] is False and record["library_version"].startswith("file:sha256:")


def test_text_rumor_and_allow(library: Path) -> None:
    (rumor,) = objects(invoke("text", PARAPHRASE, "--json", "--library", library))
    assert rumor["verdict"] == "review"
    (m,) = rumor["matches"]
    assert m["kind"] == "rumor" and m["term"] == CLAIM and m["notice"]["url"] == "https://example.org/n1"
    assert (m["start"], m["end"]) == (2, len(PARAPHRASE))
    (allowed,) = objects(invoke("text", "三黄片", "--json", "--library", library))
    assert allowed == {**allowed, "verdict": "allow", "matches": [], "masked": "三黄片"}


def test_text_human_rendering(library: Path) -> None:
    result = invoke("text", "这是赌博网站，傻逼", "--library", library)
    assert result.exit_code == 0
    assert "REVIEW" in result.stdout and "赌博网站" in result.stdout
    assert "masked: 这是赌博网站，**" in result.stdout
    rumor = invoke("text", PARAPHRASE, "--library", library)
    assert "rumor" in rumor.stdout and "https://example.org/n1" in rumor.stdout


def test_text_from_a_file_and_from_stdin(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("第一行没事\n第二行有黄片\n", encoding="utf-8")
    (record,) = objects(invoke("text", "--file", path, "--json", "--library", library))
    assert record["verdict"] == "block" and record["masked"] == "第一行没事\n第二行有**\n"
    (piped,) = objects(invoke("text", "-f", "-", "--json", "--library", library, stdin="傻逼".encode()))
    assert piped["verdict"] == "mask"


def test_lines_over_a_2000_line_file(library: Path, tmp_path: Path) -> None:
    kinds = [
        ("今天天气很好，我们去公园散步吧 {n}", "allow"),
        ("第{n}行：他在看黃.片", "block"),
        ("你这个傻 逼 {n}", "mask"),
        ("三黄片是一种药 {n}", "allow"),
        ("{n}：" + PARAPHRASE, "review"),
        ("", "allow"),
        ("这是赌博网站 {n}", "review"),
    ]
    lines = [kinds[n % len(kinds)][0].format(n=n) for n in range(2000)]
    expected = [kinds[n % len(kinds)][1] for n in range(2000)]
    path = tmp_path / "prompts.txt"
    path.write_bytes(("\r\n".join(lines[:10]) + "\r\n" + "\n".join(lines[10:]) + "\n").encode())
    result = invoke("text", "--file", path, "--lines", "--json", "--library", library)
    assert result.exit_code == 0, result.stderr
    records = objects(result)
    assert [r["line"] for r in records] == list(range(1, 2001))
    assert [r["verdict"] for r in records] == expected
    assert all(len(r["masked"]) == len(line) for r, line in zip(records, lines, strict=True))
    for record, line in zip(records, lines, strict=True):
        for m in record["matches"]:
            assert 0 <= m["start"] < m["end"] <= len(line)
    assert "block 286" in result.stderr  # the summary on standard error


def test_lines_human_output(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("黄片\n你好\n", encoding="utf-8")
    result = invoke("text", "--file", path, "--lines", "--library", library)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["1: BLOCK  黄片", "2: ALLOW"]


def test_lines_are_streamed(library: Path, tmp_path: Path) -> None:
    """A result comes back before the input ends (a tool can feed prompts one at a time)."""
    script = tmp_path / "cli.py"
    script.write_text(
        "import typer\nfrom synthguard.cli.review import review_app\n"
        "app = typer.Typer()\napp.add_typer(review_app, name='review')\napp()\n",
        encoding="utf-8",
    )
    command = [sys.executable, str(script), "review", "text", "-f", "-", "--lines", "--json"]
    process = subprocess.Popen(
        [*command, "--library", str(library)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    replies: queue.Queue[bytes] = queue.Queue()
    stdout = process.stdout
    reader = threading.Thread(target=lambda: [replies.put(line) for line in stdout], daemon=True)
    reader.start()
    try:
        process.stdin.write("黄片\n".encode())
        process.stdin.flush()
        first = json.loads(replies.get(timeout=120))
        assert (first["line"], first["verdict"]) == (1, "block")
        process.stdin.write("你好\n".encode())
        process.stdin.close()
        second = json.loads(replies.get(timeout=120))
        assert (second["line"], second["verdict"]) == (2, "allow")
        assert process.wait(timeout=120) == 0
    finally:
        if not process.stdin.closed:
            process.stdin.close()
        process.kill()
        process.wait()
        reader.join(timeout=30)
        stdout.close()


# -- bad input: exit 1, typed error lines ---------------------------------------------------------


def test_invalid_utf8_file_exits_1(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes("黄片".encode() + b"\xff\xfe")
    result = invoke("text", "--file", path, "--json", "--library", library)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("UsageError: ") and "UTF-8" in result.stderr


def test_lines_with_bad_lines_report_them_and_go_on(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"\xe9\xbb\x84\xe7\x89\x87\n" + b"caf\xe9\n" + "傻逼\n".encode())
    result = invoke("text", "--file", path, "--lines", "--json", "--library", library)
    assert result.exit_code == 1
    first, second, third = objects(result)
    assert first["verdict"] == "block" and third["verdict"] == "mask"
    assert second["line"] == 2 and second["error"].startswith("UsageError: ") and "UTF-8" in second["error"]
    assert "1 failed" in result.stderr


def test_a_text_over_the_limit_exits_1(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as fh:
        fh.write(b"a" * (MAX_INPUT_BYTES + 10))
    result = invoke("text", "--file", path, "--library", library)
    assert result.exit_code == 1 and result.stderr.startswith("UsageError: ") and "limit" in result.stderr
    with path.open("ab") as fh:
        fh.write("\n黄片\n".encode())
    lines = invoke("text", "--file", path, "--lines", "--json", "--library", library)
    assert lines.exit_code == 1
    first, second = objects(lines)
    assert first["line"] == 1 and "limit" in first["error"]
    assert second["line"] == 2 and second["verdict"] == "block"


def test_not_an_image_exits_1_and_the_others_are_reviewed(library: Path, tmp_path: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"no image in here, only text")
    result = invoke("image", fake, BRIDGE, "--json", "--library", library)
    assert result.exit_code == 1
    bad, good = objects(result)
    assert bad == {"path": str(fake), "error": bad["error"]}
    assert bad["error"].startswith("UnsupportedFormatError: ")
    assert good["path"] == str(BRIDGE) and good["verdict"] == "allow" and good["status"] == "no-match"
    human = invoke("image", fake, "--library", library)
    assert human.exit_code == 1 and human.stderr.startswith("UnsupportedFormatError: ")


# -- images and video ----------------------------------------------------------------------------


def test_image_match_with_the_sample_library(tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.png"
    with Image.open(sample_path()) as image:
        image.transpose(Image.Transpose.ROTATE_90).save(rotated)
    result = invoke("image", rotated, "--json")
    assert result.exit_code == 0, result.stderr
    (record,) = objects(result)
    assert record["verdict"] == "block" and record["sample_library"] is True
    (m,) = record["matches"]
    assert m["entry_id"] == "sample-i1" and m["variant"] != "original" and m["distance"] <= 31
    assert "SAMPLE" in result.stderr
    human = invoke("image", rotated)
    assert "BLOCK" in human.stdout and "sample-i1" in human.stdout


def test_low_quality_image_is_allowed_with_a_note(library: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(flat)
    (record,) = objects(invoke("image", flat, "--json", "--library", library))
    assert (
        record["verdict"] == "allow" and record["status"] == "low-quality" and "not matched" in record["note"]
    )


def test_video_not_a_video_exits_1(library: Path) -> None:
    result = invoke("video", BRIDGE, "--json", "--library", library)
    assert result.exit_code == 1
    (record,) = objects(result)
    assert record["error"].startswith("UnsupportedFormatError: ")


# -- the library and usage -------------------------------------------------------------------------


def test_without_a_database_the_sample_library_is_used_and_announced(tmp_path: Path) -> None:
    result = invoke("text", "路口交通很拥堵，口交", "--json")
    assert result.exit_code == 0
    (record,) = objects(result)
    assert record["sample_library"] is True and record["library_version"].startswith("sample:")
    assert [m["term"] for m in record["matches"]] == ["口交"]
    assert "SAMPLE library" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["text"],
        ["text", "abc", "--file", "x.txt"],
        ["text", "abc", "--lines"],
        ["text", "--file", "missing.txt"],
        ["text", "abc", "--bogus"],
        ["image", "missing.png"],
        ["video", "missing.mp4"],
        ["video", "x", "--every", "0"],
        ["image"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""


def test_a_bad_library_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "lib.json"
    path.write_text('{"format": "synthguard-library/1", "entries": [{"term": "x"}]}', encoding="utf-8")
    result = invoke("text", "abc", "--library", path)
    assert result.exit_code == 2
    assert result.stderr.startswith("ConfigError: ") and "entries[0]" in result.stderr


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("text", "image", "video"):
        assert command in result.stdout
