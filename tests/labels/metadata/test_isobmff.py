"""MP4 / MOV / M4A: the contract, ffprobe and mutagen reading the result, offsets, variants, hostile input."""

from __future__ import annotations

import functools
import io
import os
import shlex
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mutagen.mp4 import MP4, MP4FreeForm

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError
from synthguard.labels.metadata import _bmff
from synthguard.labels.metadata.isobmff import IsobmffLabeler, _shifted_plan
from tests.conftest import require_tool
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    CountingFile,
    ffmpeg_decode,
    ffmpeg_samples,
    ffprobe,
    label_copy,
    run_ffmpeg,
    write_samples,
)

CHAPTERS = """;FFMETADATA1
title=Chaptered clip
artist=Unit Test
[CHAPTER]
TIMEBASE=1/1000
START=0
END=500
title=Intro
[CHAPTER]
TIMEBASE=1/1000
START=500
END=1000
title=Main
"""

_VIDEO = "-f lavfi -i testsrc=size=64x48:rate=10:duration=1"
_AUDIO = "-f lavfi -i sine=frequency=440:sample_rate=8000:duration=1"
_H264 = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"
_AAC = "-c:a aac -b:a 16k"
_CHAPTERED = f"{_VIDEO} {_AUDIO} -i CHAPTERS -map 0 -map 1 -map_metadata 2 -map_chapters 2 {_H264} {_AAC}"

#: name → ffmpeg arguments (shell words; made once per test session, copied per test)
_RECIPES: dict[str, str] = {
    "moov-last.mp4": _CHAPTERED,
    "faststart.mp4": f"{_CHAPTERED} -movflags +faststart",
    "quicktime.mov": f"{_VIDEO} {_AUDIO} {_H264} {_AAC} -metadata 'title=QT title' "
    "-metadata 'artist=QT artist' -f mov",
    "tags.m4a": f"{_AUDIO} {_AAC} -movflags +faststart",
    "mdta.mp4": f"{_VIDEO} {_H264} -metadata foo=bar -metadata title=Keyed "
    "-movflags use_metadata_tags+faststart",
    "fragmented.mp4": f"{_VIDEO} {_H264} -g 3 -movflags frag_keyframe+empty_moov",
    "reserved.mp4": f"{_VIDEO} {_H264} -moov_size 4096",
    "apple-keys.mp4": f"{_VIDEO} {_AUDIO} {_H264} {_AAC} -movflags +faststart",
}
#: exiftool then writes QuickTime keys where Apple devices put them: moov/meta (handler mdta)
_APPLE_TAGS = ["-Keys:Title=Keys title", "-Keys:Author=Someone", "-UserData:Comment=udta comment"]
_CACHE: dict[str, bytes] = {}


def _tag(name: str, out: Path) -> None:
    """Tags the recipes cannot set: iTunes items (mutagen) and Apple's QuickTime keys (exiftool)."""
    if name.endswith(".m4a"):
        tags = MP4(out)
        tags["\xa9nam"] = ["A song"]
        tags["\xa9ART"] = ["An artist"]
        tags["trkn"] = [(3, 9)]
        tags.save()
    if name == "apple-keys.mp4":
        exiftool = require_tool("exiftool")
        subprocess.run([exiftool, "-q", "-overwrite_original", *_APPLE_TAGS, str(out)], check=True)


def _make_all(folder: Path) -> dict[str, bytes]:
    if _CACHE:
        return _CACHE
    chapters = folder / "chapters.txt"
    chapters.write_text(CHAPTERS)
    runs = {
        name: [str(chapters) if a == "CHAPTERS" else a for a in shlex.split(recipe)]
        for name, recipe in _RECIPES.items()
    }
    _CACHE.update(ffmpeg_samples(runs, finish=_tag))
    chapters.unlink()
    return _CACHE


def make_media(folder: Path) -> list[Path]:
    return write_samples(folder, _make_all(folder))


ffprobe_tags = functools.partial(
    ffprobe, "-show_chapters", "-show_entries", "format_tags:stream=codec_name,nb_frames,duration_ts"
)


def mutagen_tags(path: Path) -> dict[str, Any]:
    tags = MP4(path).tags or {}
    # mdta items are named by their binary key index; mutagen only understands iTunes names
    return {k: [str(v) for v in vs] for k, vs in tags.items() if k.isprintable()}


def framemd5(path: Path) -> list[str]:
    out = run_ffmpeg("-i", str(path), "-map", "0", "-f", "framemd5", "-").decode()
    return [line for line in out.splitlines() if not line.startswith("#")]


write = functools.partial(label_copy, IsobmffLabeler())


class TestIsobmffContract(MetadataLabelerContract):
    labeler = IsobmffLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_media(folder)

    def other_metadata(self, path: Path) -> Any:
        probe = ffprobe_tags(path)
        tags = probe.get("format", {}).get("tags", {})
        tags.pop("AIGC", None)
        return {"ffprobe": probe, "mutagen": mutagen_tags(path)}


@pytest.mark.tools
def test_ffprobe_reads_the_label_and_every_frame_decodes(tmp_path: Path) -> None:
    label = make_label()
    for src in make_media(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label)
        tags = ffprobe_tags(dst)["format"]["tags"]
        assert tags["AIGC"] == label.to_json(), src.name
        ffmpeg_decode(dst, clean_stderr=True)
        # chunk offsets (stco/co64, tfhd) point at the same samples as before
        assert framemd5(dst) == framemd5(src), src.name


@pytest.mark.tools
def test_titles_chapters_and_itunes_tags_survive(tmp_path: Path) -> None:
    samples = {p.name: p for p in make_media(tmp_path)}
    label = make_label()
    outs = {}
    for name, src in samples.items():
        outs[name] = tmp_path / f"out-{name}"
        write(src, outs[name], label)
    probe = ffprobe_tags(outs["moov-last.mp4"])
    assert [c["tags"]["title"] for c in probe["chapters"]] == ["Intro", "Main"]
    assert probe["format"]["tags"]["title"] == "Chaptered clip"
    assert ffprobe_tags(outs["quicktime.mov"])["format"]["tags"]["title"] == "QT title"
    m4a = MP4(outs["tags.m4a"])
    assert m4a.tags is not None
    assert m4a.tags["\xa9nam"] == ["A song"] and m4a.tags["\xa9ART"] == ["An artist"]
    assert m4a.tags["trkn"] == [(3, 9)]
    apple = ffprobe_tags(outs["apple-keys.mp4"])["format"]["tags"]
    assert apple["com.apple.quicktime.title"] == "Keys title" and apple["comment"] == "udta comment"
    assert apple["AIGC"] == label.to_json()
    keyed = ffprobe_tags(outs["mdta.mp4"])["format"]["tags"]
    assert keyed["foo"] == "bar" and keyed["title"] == "Keyed" and keyed["AIGC"] == label.to_json()


def _keys(path: Path) -> list[bytes]:
    """Every key name of every mdta keys box in moov/udta/meta."""
    data = path.read_bytes()
    stream = io.BytesIO(data)
    names = []
    for top in _bmff.iter_boxes(stream, 0, len(data)):
        if top.type != b"moov":
            continue
        for udta in (b for b in _bmff.iter_boxes(stream, top.body_offset, top.end) if b.type == b"udta"):
            for meta in (
                b for b in _bmff.iter_boxes(stream, udta.body_offset, udta.end) if b.type == b"meta"
            ):
                for keys in (
                    b for b in _bmff.iter_boxes(stream, meta.body_offset + 4, meta.end) if b.type == b"keys"
                ):
                    body = data[keys.body_offset : keys.end]
                    pos = 8
                    while pos < len(body):
                        (size,) = struct.unpack(">I", body[pos : pos + 4])
                        names.append(body[pos + 8 : pos + size])
                        pos += size
    return names


def test_existing_mdta_keys_are_kept_and_aigc_is_one_key(tmp_path: Path) -> None:
    src = next(p for p in make_media(tmp_path) if p.name == "mdta.mp4")
    assert b"foo" in _keys(src) and b"AIGC" not in _keys(src)
    once, twice = tmp_path / "once.mp4", tmp_path / "twice.mp4"
    write(src, once, make_label())
    second = make_label(ProduceID="00000000000000AB")
    write(once, twice, second)
    keys = _keys(twice)
    assert keys.count(b"AIGC") == 1
    assert keys[: len(_keys(src))] == _keys(src)
    with twice.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == second


def test_free_space_absorbs_the_change_without_moving_media(tmp_path: Path) -> None:
    src = next(p for p in make_media(tmp_path) if p.name == "reserved.mp4")
    data = src.read_bytes()
    mdat_at = data.index(b"mdat")
    dst = tmp_path / "out.mp4"
    write(src, dst, make_label())
    assert dst.stat().st_size == src.stat().st_size
    assert dst.read_bytes().index(b"mdat") == mdat_at
    target = tmp_path / "in-place.mp4"
    target.write_bytes(data)
    label = make_label()
    with target.open("r+b") as fh:
        assert IsobmffLabeler().write_in_place(fh, label.to_json())
    with target.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label
    assert target.read_bytes()[mdat_at:] == data[mdat_at:]


def test_in_place_with_moov_at_the_end_and_refusal_otherwise(tmp_path: Path) -> None:
    samples = {p.name: p for p in make_media(tmp_path)}
    last = samples["moov-last.mp4"]
    before = last.read_bytes()
    label = make_label()
    with last.open("r+b") as fh:
        assert IsobmffLabeler().write_in_place(fh, label.to_json())
    with last.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label
    mdat_end = before.index(b"moov") - 4
    assert last.read_bytes()[:mdat_end] == before[:mdat_end]
    # relabel in place again: the file shrinks or grows at its end only
    with last.open("r+b") as fh:
        assert IsobmffLabeler().write_in_place(fh, make_label(ProduceID="1").to_json())
    assert last.read_bytes().count(b'"ProduceID"') == 1
    fast = samples["faststart.mp4"]
    original = fast.read_bytes()
    with fast.open("r+b") as fh:
        assert not IsobmffLabeler().write_in_place(fh, label.to_json())
    assert fast.read_bytes() == original


def test_two_gigabyte_file_reads_only_the_moov(tmp_path: Path) -> None:
    src = next(p for p in make_media(tmp_path) if p.name == "moov-last.mp4")
    labeled = tmp_path / "labeled.mp4"
    label = make_label()
    write(src, labeled, label)
    data = labeled.read_bytes()
    stream = io.BytesIO(data)
    boxes = {b.type: b for b in _bmff.iter_boxes(stream, 0, len(data))}
    moov = data[boxes[b"moov"].offset : boxes[b"moov"].end]
    big = tmp_path / "big.mp4"
    mdat_size = 2**31 + 8
    with big.open("wb") as fh:
        fh.write(data[: boxes[b"ftyp"].end])
        fh.write(struct.pack(">I4s", mdat_size, b"mdat"))
        fh.seek(mdat_size - 8, os.SEEK_CUR)  # sparse: nothing is written
        fh.write(moov)
    assert big.stat().st_size > 2**31
    with CountingFile(big, "rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label  # type: ignore[arg-type]
        assert fh.count < 16 * 1024
    second = make_label(ProduceID="00000000000000AB")
    with CountingFile(big, "r+b") as fh:
        assert IsobmffLabeler().write_in_place(fh, second.to_json())  # type: ignore[arg-type]
        assert fh.count < 64 * 1024
    with big.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == second


def _with_udta_child(src: Path, child: bytes) -> bytes:
    """The moov-at-end sample with ``child`` appended to moov/udta (only moov changes)."""
    data = src.read_bytes()
    stream = io.BytesIO(data)
    moov = next(b for b in _bmff.iter_boxes(stream, 0, len(data)) if b.type == b"moov")
    tree = _bmff.parse_tree(
        data[moov.body_offset : moov.end], b"moov", lambda p: p in ((b"moov",), (b"moov", b"udta"))
    )
    udta = tree.kid(b"udta")
    assert udta is not None and udta.children is not None
    udta.children.append(_bmff.Node(child[4:8], body=child[8:]))
    assert moov.end == len(data)
    return data[: moov.offset] + tree.to_bytes()


def test_reads_variants_seen_in_the_wild(tmp_path: Path) -> None:
    samples = {p.name: p for p in make_media(tmp_path)}
    label = make_label()
    text = label.to_json().encode()
    # a freeform ----:com.apple.iTunes:AIGC item (mutagen writes it in the iTunes ilst)
    m4a = samples["tags.m4a"]
    tags = MP4(m4a)
    tags["----:com.apple.iTunes:AIGC"] = [MP4FreeForm(text)]
    tags.save()
    with m4a.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label
    # an ilst item whose type is AIGC
    tags = MP4(m4a)
    del tags["----:com.apple.iTunes:AIGC"]
    tags["AIGC"] = [label.to_json()]
    tags.save()
    with m4a.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label
    # writing adds the standard carrier and leaves the variant alone
    out = tmp_path / "std.m4a"
    standard = make_label(ProduceID="00000000000000AB")
    write(m4a, out, standard)
    with out.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == standard
    assert MP4(out).tags["AIGC"] == [label.to_json()]  # type: ignore[index]
    # a udta atom AIGC: raw text, QuickTime text (length + language) and a data atom
    src = samples["moov-last.mp4"]
    forms = [
        text,
        struct.pack(">HH", len(text), 0x55C4) + text,
        _bmff.box_bytes(b"data", struct.pack(">II", 1, 0) + text),
    ]
    for form in forms:
        variant = tmp_path / "udta.mp4"
        variant.write_bytes(_with_udta_child(src, _bmff.box_bytes(b"AIGC", form)))
        with variant.open("rb") as fh:
            assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label


def test_stco_that_would_overflow_becomes_co64() -> None:
    table = struct.pack(">II", 0, 3) + struct.pack(">3I", 10, 0xFFFFFFF0, 5000)
    body = nest(b"trak", b"mdia", b"minf", b"stbl", b"stco", table)
    tree = _bmff.parse_tree(
        body, b"moov", lambda p: p == (b"moov", b"trak", b"mdia", b"minf", b"stbl")[: len(p)]
    )
    # the labeled tree is 100 bytes longer than the moov it came from
    moov = _bmff.Box(b"moov", 1000, 8, 8 + len(body) - 100)
    plan = _shifted_plan(moov, tree, 100, [])
    assert plan.shift is not None and plan.shift.delta == 100 + 12  # 3 entries widened by 4 bytes
    new = plan.new_moov
    at = new.index(b"co64")
    assert new.find(b"stco") < 0
    values = struct.unpack(">3Q", new[at + 12 : at + 36])
    assert values == (10, 0xFFFFFFF0 + 112, 5000 + 112)


def box(box_type: bytes, body: bytes) -> bytes:
    return _bmff.box_bytes(box_type, body)


def nest(*types_then_body: bytes) -> bytes:
    """``nest(b"moov", b"udta", body)``: boxes inside boxes around ``body``."""
    *types, body = types_then_body
    for box_type in reversed(types):
        body = box(box_type, body)
    return body


def test_hostile_boxes_raise_typed_errors() -> None:
    labeler = IsobmffLabeler()
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isom")
    hdlr = box(b"hdlr", b"\x00" * 8 + b"mdta" + b"\x00" * 13)
    cases = {
        "no moov": ftyp + box(b"mdat", b"x" * 10),
        "size below header": ftyp + struct.pack(">I4s", 4, b"moov"),
        "past the end": ftyp + struct.pack(">I4s", 100, b"moov") + b"\x00" * 10,
        "2**64 largesize": ftyp + struct.pack(">I4sQ", 1, b"moov", 2**64 - 1),
        "largesize below 16": ftyp + struct.pack(">I4sQ", 1, b"moov", 8),
        "stray bytes": ftyp + b"\x01\x02\x03",
        "child past parent": ftyp + box(b"moov", struct.pack(">I4s", 50, b"udta")),
        "two moovs": ftyp + box(b"moov", b"") * 2,
        "keys count": ftyp
        + nest(
            b"moov", b"udta", b"meta", b"\x00" * 4 + hdlr + box(b"keys", struct.pack(">II", 0, 2**32 - 1))
        ),
        "short data atom": ftyp
        + nest(b"moov", b"udta", b"meta", b"\x00" * 4 + nest(b"ilst", b"AIGC", b"data", b"\x00\x00")),
        "stco count": ftyp
        + nest(b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco", struct.pack(">II", 0, 2**30))
        + box(b"mdat", b"x"),
    }
    read_only = {"short data atom"}  # the writer leaves a non-mdta ilst alone
    write_only = {"two moovs", "stco count"}  # the reader stops at the first moov, before stbl
    for name, blob in cases.items():
        if name not in write_only:
            with pytest.raises(MediaError):
                labeler.read(io.BytesIO(blob))
        if name not in read_only:
            with pytest.raises(MediaError):
                labeler.write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())
    # size 0 is "to the end": legal for the last box, so this moov is read as it is
    last = ftyp + struct.pack(">I4s", 0, b"moov")
    assert labeler.read(io.BytesIO(last)) is None
    out = io.BytesIO()
    labeler.write(io.BytesIO(last), out, make_label().to_json())
    assert labeler.read(io.BytesIO(out.getvalue())) is not None


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    body = b""
    for _ in range(_bmff.MAX_DEPTH + 4):
        body = _bmff.box_bytes(b"nest", body)
    with pytest.raises(MediaLimitError):
        _bmff.parse_tree(body, b"root", lambda p: True)
    with pytest.raises(CorruptMediaError):
        list(_bmff.iter_boxes(io.BytesIO(b"\x00\x00\x00\x09abcd"), 0, 8))


@pytest.mark.tools
def test_quicktime_plain_meta_form_is_read_and_kept(tmp_path: Path) -> None:
    src = next(p for p in make_media(tmp_path) if p.name == "moov-last.mp4")
    labeled = tmp_path / "labeled.mp4"
    label = make_label()
    write(src, labeled, label)
    data = labeled.read_bytes()
    moov = next(b for b in _bmff.iter_boxes(io.BytesIO(data), 0, len(data)) if b.type == b"moov")
    paths = ((b"moov",), (b"moov", b"udta"), (b"moov", b"udta", b"meta"))
    tree = _bmff.parse_tree(data[moov.body_offset : moov.end], b"moov", lambda p: p in paths)
    udta = tree.kid(b"udta")
    assert udta is not None
    metas = udta.kids(b"meta")
    assert [m.prefix for m in metas] == [b"\x00" * 4, b"\x00" * 4]  # ffmpeg's mdir, then ours
    metas[1].prefix = b""  # QuickTime's form: no version and flags
    plain = tmp_path / "plain-meta.mp4"
    plain.write_bytes(data[: moov.offset] + tree.to_bytes())
    assert ffprobe_tags(plain)["format"]["tags"]["AIGC"] == label.to_json()
    with plain.open("rb") as fh:
        assert AigcLabel.parse(IsobmffLabeler().read(fh) or "") == label
    again = tmp_path / "again.mp4"
    second = make_label(ProduceID="00000000000000AB")
    write(plain, again, second)
    assert ffprobe_tags(again)["format"]["tags"]["AIGC"] == second.to_json()
    assert again.stat().st_size == plain.stat().st_size
    assert again.read_bytes().count(b"AIGC") == 1


def test_moov_level_iloc_and_saio_offsets_shift() -> None:
    iloc = _bmff.Iloc(
        1,
        b"\x00\x00\x00",
        4,
        4,
        0,
        0,
        [
            _bmff.IlocItem(1, 0, 0, 0, [_bmff.IlocExtent(0, 5000, 10)]),
            _bmff.IlocItem(2, 1, 0, 0, [_bmff.IlocExtent(0, 5000, 10)]),  # idat: not a file offset
            _bmff.IlocItem(3, 0, 0, 0, [_bmff.IlocExtent(0, 10, 10)]),  # before moov: stays
        ],
    )
    meta = box(
        b"meta",
        b"\x00" * 4
        + box(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13)
        + box(b"iloc", iloc.to_bytes(iloc.sizes())),
    )
    saio = struct.pack(">II", 0, 2) + struct.pack(">2I", 10, 6000)
    body = meta + nest(b"trak", b"mdia", b"minf", b"stbl", b"saio", saio)
    stbl_path = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
    tree = _bmff.parse_tree(body, b"moov", lambda p: p == stbl_path[: len(p)] or p == (b"moov", b"meta"))
    _bmff.shift_chunk_offsets(tree, _bmff.Shift(1000, 7))
    new_meta = tree.kid(b"meta")
    assert new_meta is not None
    node = new_meta.kid(b"iloc")
    assert node is not None
    shifted = _bmff.Iloc.parse(node.body)
    assert [i.extents[0].offset for i in shifted.items] == [5007, 5000, 10]
    out = tree.to_bytes()
    at = out.index(b"saio")
    assert struct.unpack(">2I", out[at + 12 : at + 20]) == (10, 6007)
