"""Matroska and WebM: the contract, plus ffprobe showing ``AIGC`` as a format tag, ffmpeg decoding
every frame, PyAV reading the same packets (bytes and timestamps) and seeking through the Cues,
every SeekHead and Cues position landing on its element after clusters moved, and hostile EBML.

mkvinfo is not available; the checks walk the EBML with the small independent parser below."""

from __future__ import annotations

import functools
import io
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import av
import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.matroska import MatroskaLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    LAVFI,
    ffmpeg_decode,
    ffmpeg_samples,
    ffprobe,
    label_copy,
    packets,
    run_ffmpeg,
    tags_and_streams,
    write_samples,
)

SEGMENT, SEEKHEAD, SEEK, CUES, TAGS, CLUSTER, VOID = (
    0x18538067,
    0x114D9B74,
    0x4DBB,
    0x1C53BB6B,
    0x1254C367,
    0x1F43B675,
    0xEC,
)
MASTERS = {SEGMENT, SEEKHEAD, SEEK, CUES, 0xBB, 0xB7, TAGS, 0x7373, 0x63C0, 0x67C8}
CHAPTERS = ";FFMETADATA1\ntitle=Chaptered\n" + "".join(
    f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={s}\nEND={s + 500}\ntitle=Part {s}\n" for s in (0, 500)
)
#: Samples without room for the Tags: their clusters move.
MOVING = {"live.webm", "tight.mkv", "unknown-clusters.webm"}


# -- a small EBML reader for the checks ------------------------------------------------------


def vint(data: bytes, pos: int, keep_marker: bool = False) -> tuple[int, int]:
    length = 9 - data[pos].bit_length()
    value = int.from_bytes(data[pos : pos + length], "big")
    return (value if keep_marker else value & ((1 << (7 * length)) - 1)), length


def elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """``(id, offset, data offset, end)`` of the elements in ``[start, end)``."""
    found, pos = [], start
    while pos < end:
        eid, n = vint(data, pos, keep_marker=True)
        size, m = vint(data, pos + n)
        if size == (1 << (7 * m)) - 1:  # unknown size: to the end
            size = end - pos - n - m
        found.append((eid, pos, pos + n + m, pos + n + m + size))
        pos += n + m + size
    return found


def segment(data: bytes) -> tuple[int, list[tuple[int, int, int, int]]]:
    ebml = elements(data, 0, len(data))
    seg = next(e for e in ebml if e[0] == SEGMENT)
    return seg[2], elements(data, seg[2], seg[3])


def uint(data: bytes, element: tuple[int, int, int, int]) -> int:
    return int.from_bytes(data[element[2] : element[3]], "big")


def descendants(data: bytes, element: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    out = []
    for child in elements(data, element[2], element[3]):
        out.append(child)
        if child[0] in MASTERS:
            out += descendants(data, child)
    return out


def check_positions(data: bytes) -> None:
    """Every SeekHead entry and every CueClusterPosition names the element found there."""
    base, level1 = segment(data)
    ids_at = {off - base: eid for eid, off, _, _ in level1}
    for element in level1:
        if element[0] == SEEKHEAD:
            for seek in (e for e in descendants(data, element) if e[0] == SEEK):
                parts = {e[0]: e for e in elements(data, seek[2], seek[3])}
                target = int.from_bytes(data[parts[0x53AB][2] : parts[0x53AB][3]], "big")
                assert ids_at[uint(data, parts[0x53AC])] == target
        if element[0] == CUES:
            for position in (e for e in descendants(data, element) if e[0] == 0xF1):
                assert ids_at[uint(data, position)] == CLUSTER


def check_crcs(data: bytes) -> None:
    """Every level-1 master whose first child is a CRC-32 matches its data (ffmpeg writes them)."""
    for element in segment(data)[1]:
        if element[0] == CLUSTER:
            continue
        children = elements(data, element[2], element[3])
        if children and children[0][0] == 0xBF:
            crc = struct.unpack("<I", data[children[0][2] : children[0][3]])[0]
            assert crc == zlib.crc32(data[children[0][3] : element[3]]), hex(element[0])


def unknown_size_clusters(data: bytes) -> bytes:
    """Every cluster's size field set to "unknown" (as browsers' MediaRecorder writes them)."""
    out = bytearray(data)
    for eid, offset, data_offset, _ in segment(data)[1]:
        if eid == CLUSTER:
            width = data_offset - offset - 4
            out[offset + 4 : data_offset] = ((1 << (7 * width + 1)) - 1).to_bytes(width, "big")
    return bytes(out)


def size8(n: int) -> bytes:
    return (n | 1 << 56).to_bytes(8, "big")


def el(eid: int, payload: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + size8(len(payload)) + payload


def relayout(data: bytes) -> bytes:
    """The file laid out again with no Void and no Tags: SeekHead, Info, Tracks, Chapters,
    clusters, Cues (positions recomputed), so that a label can only go in by moving clusters."""
    base, level1 = segment(data)
    head = data[: next(e for e in elements(data, 0, len(data)) if e[0] == SEGMENT)[1]]
    keep = [e for e in level1 if e[0] not in (SEEKHEAD, VOID, TAGS, CUES, 0xBF)]
    cues = next(e for e in level1 if e[0] == CUES)
    seekhead_len = len(
        el(SEEKHEAD, b"".join(el(SEEK, el(0x53AB, b"1234") + el(0x53AC, bytes(8))) for _ in range(3)))
    )
    new_at, pos = {}, seekhead_len
    for e in keep:
        new_at[e[1] - base] = pos
        pos += e[3] - e[1]
    cues_at = pos

    def cue_bytes(element: tuple[int, int, int, int]) -> bytes:
        parts = []
        for child in elements(data, element[2], element[3]):
            if child[0] == 0xBF:
                continue
            if child[0] in (0xBB, 0xB7):
                parts.append(el(child[0], cue_bytes(child)))
            elif child[0] == 0xF1:
                parts.append(el(0xF1, new_at[uint(data, child)].to_bytes(8, "big")))
            else:
                parts.append(data[child[1] : child[3]])
        return b"".join(parts)

    heads = [(e[0], new_at[e[1] - base]) for e in keep if e[0] != CLUSTER][:2]
    targets = [*heads, (CUES, cues_at)]
    seekhead = el(
        SEEKHEAD,
        b"".join(
            el(SEEK, el(0x53AB, t.to_bytes(4, "big")) + el(0x53AC, p.to_bytes(8, "big"))) for t, p in targets
        ),
    )
    assert len(seekhead) == seekhead_len
    body = seekhead + b"".join(data[e[1] : e[3]] for e in keep) + el(CUES, cue_bytes(cues))
    return head + el(SEGMENT, body)


def tags_to_void(data: bytes) -> bytes:
    """The Tags element and its SeekHead entry turned into Voids of the same length."""
    out = bytearray(data)
    _, level1 = segment(data)

    def blank(start: int, end: int) -> None:
        out[start:end] = b"\xec" + size8(end - start - 9) + bytes(end - start - 9)

    for element in level1:
        if element[0] == TAGS:
            blank(element[1], element[3])
        if element[0] == SEEKHEAD:
            for seek in (e for e in descendants(data, element) if e[0] == SEEK):
                if data[seek[2] : seek[3]].find(bytes.fromhex("1254c367")) >= 0:
                    out[seek[1] : seek[3]] = (
                        b"\xec" + bytes([0x80 | (seek[3] - seek[1] - 2)]) + bytes(seek[3] - seek[1] - 2)
                    )
    return bytes(out)


# -- samples ---------------------------------------------------------------------------------


@functools.cache
def sample_bytes() -> dict[str, bytes]:
    vp9_opus = [  # a second of VP9 and Opus: the WebM file and the live recording
        *LAVFI,
        "sine=f=440",
        "-t",
        "1",
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-c:a",
        "libopus",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        chapters = Path(tmp) / "chapters.txt"
        chapters.write_text(CHAPTERS)
        runs = {
            # h264 + aac, CRC-32 in every level-1 element, chapters, title, stream language
            "h264-aac.mkv": [
                *LAVFI,
                "sine=f=440",
                "-i",
                str(chapters),
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-map_metadata",
                "2",
                "-map_chapters",
                "2",
                "-t",
                "1",
                "-c:v",
                "libx264",
                "-c:a",
                "aac",
                "-metadata",
                "title=A title",
                "-metadata",
                "comment=keep me",
                "-metadata:s:a",
                "language=eng",
            ],
            "vp9-opus.webm": [*vp9_opus, "-metadata", "title=A title"],
            # several clusters and Cues, for the relayout below
            "mjpeg-pcm.mkv": [
                *LAVFI,
                "sine=f=440:sample_rate=8000",
                "-t",
                "1",
                "-c:v",
                "mjpeg",
                "-c:a",
                "pcm_s16le",
                "-cluster_time_limit",
                "200",
                "-metadata",
                "title=Clusters",
            ],
        }
        made = ffmpeg_samples(runs)
    # a live recording: unknown Segment size, no Cues
    made["live.webm"] = run_ffmpeg(*vp9_opus, "-metadata", "title=Live", "-f", "webm", "pipe:1")
    made["no-tags-void.webm"] = tags_to_void(made["vp9-opus.webm"])
    made["unknown-clusters.webm"] = unknown_size_clusters(made["live.webm"])
    made["tight.mkv"] = relayout(made["mjpeg-pcm.mkv"])
    return made


def make_mkvs(folder: Path) -> list[Path]:
    return write_samples(folder, sample_bytes())


ffprobe_chapters = functools.partial(ffprobe, "-show_format", "-show_streams", "-show_chapters")


def first_packet_after_seek(path: Path, seconds: float) -> tuple[int | None, bytes]:
    with av.open(str(path)) as container:
        container.seek(int(seconds * 1_000_000), any_frame=False)
        packet = next(p for p in container.demux(video=0) if p.size)
        return packet.pts, bytes(packet)


write = functools.partial(label_copy, MatroskaLabeler())


class TestMatroskaContract(MetadataLabelerContract):
    labeler = MatroskaLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_mkvs(folder)

    def other_metadata(self, path: Path) -> Any:
        probe = ffprobe_chapters(path)
        keys = ("codec_name", "width", "height", "sample_rate", "channels", "tags")
        tags, streams = tags_and_streams(probe, keys)
        chapters = [(c["start_time"], c["end_time"], c.get("tags")) for c in probe["chapters"]]
        return tags, streams, chapters


@pytest.mark.tools
def test_ffprobe_ffmpeg_and_pyav_agree(tmp_path: Path) -> None:
    label = make_label()
    for src in make_mkvs(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label)
        assert AigcLabel.parse(ffprobe_chapters(dst)["format"]["tags"]["AIGC"]) == label, src.name
        ffmpeg_decode(dst, xerror=True)
        assert packets(dst) == packets(src), src.name
        data = dst.read_bytes()
        check_positions(data)
        check_crcs(data)
        if src.name.endswith(".mkv"):  # (too few keyframes to seek)
            assert first_packet_after_seek(dst, 0.6) == first_packet_after_seek(src, 0.6)
        _, level1 = segment(data)
        tags = [e for e in level1 if e[0] == TAGS]
        assert len(tags) == 1, src.name


def test_layouts_chosen(tmp_path: Path) -> None:
    """Where the Tags went, per sample: clusters move only when nothing else fits."""
    for src in make_mkvs(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, make_label())
        before, after = src.read_bytes(), dst.read_bytes()
        clusters_before = [e[1] for e in segment(before)[1] if e[0] == CLUSTER]
        clusters_after = [e[1] for e in segment(after)[1] if e[0] == CLUSTER]
        moved = clusters_before != clusters_after
        assert moved == (src.name in MOVING), src.name
        if src.name == "no-tags-void.webm":  # into the Void before the clusters
            assert len(after) == len(before)
        if src.name == "live.webm":  # the unknown segment size stays unknown
            assert after[40:48] == before[40:48] == b"\x01" + b"\xff" * 7


def test_relabel_and_in_place(tmp_path: Path) -> None:
    labeler = MatroskaLabeler()
    for src in make_mkvs(tmp_path):
        target = tmp_path / f"ip-{src.name}"
        target.write_bytes(src.read_bytes())
        label = make_label()
        with target.open("r+b") as fh:
            done = labeler.write_in_place(fh, label.to_json())
        if src.name in MOVING:
            assert not done and target.read_bytes() == src.read_bytes()
            write(src, target, label)  # the rewrite moves clusters once, with a reserve
        else:
            assert done, src.name
        check_positions(target.read_bytes())
        longer = make_label(ContentPropagator="001191110102MACQD9K64020001", PropagateID="R" * 40)
        with target.open("r+b") as fh:  # the relabel now fits without moving a cluster
            assert labeler.write_in_place(fh, longer.to_json()), src.name
        with target.open("rb") as fh:
            assert AigcLabel.parse(labeler.read(fh) or "") == longer
        assert AigcLabel.parse(ffprobe_chapters(target)["format"]["tags"]["AIGC"]) == longer
        assert packets(target) == packets(src)
        check_positions(target.read_bytes())


def test_tag_under_other_targets_is_read_but_a_global_one_is_written(tmp_path: Path) -> None:
    label = make_label()
    simple = el(0x67C8, el(0x45A3, b"AIGC") + el(0x4487, b"track-level"))
    track_tag = el(0x7373, el(0x63C0, el(0x63C5, b"\x01")) + simple)
    data = sample_bytes()["no-tags-void.webm"]
    _, level1 = segment(data)
    void = max((e for e in level1 if e[0] == VOID), key=lambda e: e[3] - e[1])  # the old Tags
    tags = el(TAGS, track_tag)
    patched = data[: void[1]] + tags + b"\xec" + size8(void[3] - void[1] - len(tags) - 9)
    patched += bytes(void[3] - void[1] - len(tags) - 9) + data[void[3] :]
    labeler = MatroskaLabeler()
    assert labeler.read(io.BytesIO(patched)) == "track-level"
    out = io.BytesIO()
    labeler.write(io.BytesIO(patched), out, label.to_json())
    assert AigcLabel.parse(labeler.read(io.BytesIO(out.getvalue())) or "") == label
    assert b"track-level" in out.getvalue()  # the variant is left for an explicit migration


def ebml_head(doctype: bytes = b"webm") -> bytes:
    return el(0x1A45DFA3, el(0x4282, doctype))


def test_hostile_ebml_is_a_typed_error(tmp_path: Path) -> None:
    labeler = MatroskaLabeler()
    cases: list[tuple[bytes, type[Exception]]] = [
        (ebml_head(b"dvd") + el(SEGMENT, b""), UnsupportedFormatError),
        (ebml_head() + SEGMENT.to_bytes(4, "big") + size8(1 << 40), CorruptMediaError),
        (ebml_head() + SEGMENT.to_bytes(4, "big") + b"\xff" + b"\x00\x00", CorruptMediaError),
        (ebml_head() + el(SEGMENT, TAGS.to_bytes(4, "big") + b"\xff"), CorruptMediaError),
        (ebml_head() + el(SEGMENT, el(0xBF, b"abcd")), UnsupportedFormatError),
        (ebml_head() + el(SEGMENT, el(TAGS, el(0x7373, b"\x67\xc8\x90"))), CorruptMediaError),
    ]
    for blob, error in cases:
        with pytest.raises(error):
            labeler.read(io.BytesIO(blob))
        with pytest.raises(error):
            labeler.write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())
    # a SeekHead pointing at itself and at garbage is followed once, then ignored
    seekhead = el(
        SEEKHEAD,
        el(SEEK, el(0x53AB, SEEKHEAD.to_bytes(4, "big")) + el(0x53AC, b"\x00"))
        + el(SEEK, el(0x53AB, TAGS.to_bytes(4, "big")) + el(0x53AC, b"\x7f\xff")),
    )
    assert labeler.read(io.BytesIO(ebml_head() + el(SEGMENT, seekhead))) is None
    # a Tags element too large to be a label's is refused before it is read
    huge = tmp_path / "huge.webm"
    with huge.open("wb") as fh:
        fh.write(ebml_head() + SEGMENT.to_bytes(4, "big") + b"\xff" + TAGS.to_bytes(4, "big"))
        fh.write(size8(17 << 20))
        fh.truncate(fh.tell() + (17 << 20))
    with huge.open("rb") as fh, pytest.raises(MediaLimitError):
        labeler.read(fh)


def elm(eid: int, payload: bytes) -> bytes:
    """An element with the shortest size field (as most muxers write)."""
    n = len(payload)
    width = next(w for w in range(1, 9) if n < (1 << (7 * w)) - 1)
    return (
        eid.to_bytes((eid.bit_length() + 7) // 8, "big")
        + (n | 1 << (7 * width)).to_bytes(width, "big")
        + payload
    )


def short_uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def synthetic(cluster_sizes: list[int]) -> bytes:
    """SeekHead, Info, clusters, Cues, with every number as short as it goes."""
    info = elm(0x1549A966, elm(0x2AD7B1, b"\x0f\x42\x40"))
    clusters = [
        elm(CLUSTER, elm(0xE7, bytes([i])) + elm(0xA3, b"\x81\x00\x00\x80" + bytes(n)))
        for i, n in enumerate(cluster_sizes)
    ]
    info_id, cues_id = bytes.fromhex("1549a966"), bytes.fromhex("1c53bb6b")
    seekhead = b""
    for _ in range(4):  # the SeekHead's length depends on the positions it holds
        at = [len(seekhead) + len(info)]
        for cluster in clusters[:-1]:
            at.append(at[-1] + len(cluster))
        cues_at = at[-1] + len(clusters[-1])
        seekhead = elm(
            SEEKHEAD,
            b"".join(
                elm(SEEK, elm(0x53AB, t) + elm(0x53AC, short_uint(p)))
                for t, p in ((info_id, len(seekhead)), (cues_id, cues_at))
            ),
        )
    cues = elm(
        CUES,
        b"".join(
            elm(0xBB, elm(0xB3, bytes([i])) + elm(0xB7, elm(0xF7, b"\x01") + elm(0xF1, short_uint(p))))
            for i, p in enumerate(at)
        ),
    )
    body = seekhead + info + b"".join(clusters) + cues
    return ebml_head(b"matroska") + elm(SEGMENT, body)


def test_positions_widen_to_a_fixed_point() -> None:
    """Moving clusters past 64 KiB makes positions need a third byte: the SeekHead grows, which
    moves everything again; every position must still land on its element."""
    data = synthetic([30_000, 34_900, 300])
    check_positions(data)
    labeler = MatroskaLabeler()
    out = io.BytesIO()
    labeler.write(io.BytesIO(data), out, make_label().to_json())
    result = out.getvalue()
    check_positions(result)
    _, level1 = segment(result)
    cues = next(e for e in level1 if e[0] == CUES)
    widths = [e[3] - e[2] for e in descendants(result, cues) if e[0] == 0xF1]
    assert widths[-1] == 3  # the last cluster moved past 65535
    # Info, Cues (grown from 2 to 3 bytes: a second pass), and the Tags entry added
    seeks = [e for e in descendants(result, level1[0]) if e[0] == 0x53AC]
    assert [e[3] - e[2] for e in seeks] == [1, 3, 1]
    assert [e[3] - e[2] for e in descendants(data, segment(data)[1][0]) if e[0] == 0x53AC] == [1, 2]
    before = b"".join(labeler.payload(io.BytesIO(data)))
    assert b"".join(labeler.payload(io.BytesIO(result))) == before
    assert labeler.read(io.BytesIO(result)) is not None
