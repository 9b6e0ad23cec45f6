from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthguard._cache import cache_dir, cached_json
from synthguard.review import _homophones


def _counting_build(calls: list[int], value: object) -> object:
    def build() -> object:
        calls.append(1)
        return value

    return build


def test_a_table_is_built_once_then_read_from_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGUARD_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[int] = []
    assert cached_json("t-1", _counting_build(calls, [[1, "a"]])) == [[1, "a"]]
    assert cached_json("t-1", _counting_build(calls, [[2, "b"]])) == [[1, "a"]]
    assert len(calls) == 1
    assert json.loads((tmp_path / "cache" / "t-1.json").read_text()) == [[1, "a"]]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'"wrong"'])
def test_a_bad_copy_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    monkeypatch.setenv("SYNTHGUARD_CACHE_DIR", str(tmp_path))
    (tmp_path / "t-2.json").write_bytes(content)
    calls: list[int] = []
    check = lambda v: isinstance(v, list) and len(v) == 1  # noqa: E731
    assert cached_json("t-2", _counting_build(calls, ["x"]), check=check) == ["x"]
    assert calls == [1]
    assert json.loads((tmp_path / "t-2.json").read_text()) == ["x"]


def test_the_cache_can_be_off_or_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGUARD_CACHE_DIR", "off")
    assert cache_dir() is None
    calls: list[int] = []
    cached_json("t-3", _counting_build(calls, [1]))
    cached_json("t-3", _counting_build(calls, [1]))
    assert len(calls) == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SYNTHGUARD_CACHE_DIR", str(blocker / "cache"))
    assert cached_json("t-3", _counting_build(calls, [2])) == [2]


def test_names_are_checked() -> None:
    with pytest.raises(ValueError):
        cached_json("../escape", list)


def test_cached_readings_equal_derived_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGUARD_CACHE_DIR", str(tmp_path))
    derived = dict(_homophones._derive_readings())
    _homophones.primary_readings.cache_clear()
    try:
        assert _homophones.primary_readings() == derived  # built and stored
        _homophones.primary_readings.cache_clear()
        assert _homophones.primary_readings() == derived  # read back
        assert len(list(tmp_path.glob("pinyin-readings-*.json"))) == 1
    finally:
        _homophones.primary_readings.cache_clear()
