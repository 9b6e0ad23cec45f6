"""Visible labels on video (GB 45438 5.5): text on the opening frames for at least 2 s of playback.

:func:`label_video_file` decodes with PyAV, draws the label on the frames shown during each
configured span (the start always; the middle and the end when configured) and encodes them with
the same codec, resolution, frame rate, time base, pixel format, colour description and rotation
(display matrix); audio and subtitle streams are copied packet for packet.

Only the GOPs that carry a label are re-encoded when the codec allows it: H.264 in MP4, MOV or
Matroska, where a track has one decoder configuration (``avcC``) for all its packets. The copied
GOPs keep the source's SPS/PPS; the re-encoded ones come from libx264 with a different
``sps-id`` (and the source's profile and level), and both sets go into the ``avcC`` record, which
may hold several, so every slice finds its own by id. Re-encoded GOPs have no B-frames, so their
decoding timestamps are their presentation timestamps less the source's constant decoding delay,
and they interleave with the copied packets without a gap. A GOP boundary is used only at a closed
IDR frame (nothing after it refers to anything before it). Everything else (another codec, Annex B
parameter sets, one long GOP, open GOPs, a delay that changes) re-encodes the whole stream, and
``details["why_reencoded"]`` says why: HEVC could be spliced the same way through ``hvcC``, VP9 and
AV1 through their own keyframes, not done yet.

The label is blended straight into the Y, Cb and Cr planes of 4:2:0 frames (BT.709 for HD, BT.601
below, limited or full range as flagged), so only the label's box changes and no colour
conversion of the rest of the frame happens; other pixel formats go through RGB.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
from av.video.frame import PictureType

from synthguard._codecs import VIDEO_ENCODERS, add_matching_video_stream
from synthguard._io import atomic_output
from synthguard.errors import CorruptMediaError, UnsupportedFormatError, UsageError
from synthguard.visible import _h264, _render
from synthguard.visible.font import check_renderable
from synthguard.visible.result import VisibleResult
from synthguard.visible.wording import wording_from_settings

__all__ = ["ENCODERS", "ProgressCallback", "label_video_file"]

#: Called with (frames done, frames expected or None).
ProgressCallback = Callable[[int, int | None], None]

#: Encoder used for each source codec.
ENCODERS: Final = VIDEO_ENCODERS
#: Encoder options: near-transparent quality at a fast preset (the bench uses the same for ffmpeg).
ENCODER_OPTIONS: Final = {
    "libx264": {"crf": "18", "preset": "veryfast"},
    "libx265": {"crf": "20", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "24", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    "libvpx": {"crf": "10", "b": "2M", "deadline": "realtime", "cpu-used": "8"},
    "libsvtav1": {"crf": "28", "preset": "10"},
}
_COPY_TYPES: Final = ("audio", "subtitle")
#: H.264 profile_idc -> libx264 profile (constrained baseline is 66 with a flag: baseline covers it).
_X264_PROFILES: Final = {
    66: "baseline",
    77: "main",
    100: "high",
    110: "high10",
    122: "high422",
    244: "high444",
}
_ORIENTATION_OF_ROTATION: Final = {0: 1, 90: 8, 180: 3, 270: 6}


def _muxer(input_format: str, dst: Path) -> str:
    names = input_format.split(",")
    suffix = dst.suffix.lower()
    if "mp4" in names or "mov" in names:
        return "mov" if suffix == ".mov" else "mp4"
    if "matroska" in names or "webm" in names:
        return "webm" if suffix == ".webm" else "matroska"
    return names[0]


def _spans(where: tuple[str, ...], seconds: float, duration: float | None) -> list[tuple[str, float, float]]:
    spans = [("start", 0.0, seconds)]
    if duration is not None and duration > 0:
        if "middle" in where:
            mid = duration / 2
            spans.append(("middle", max(0.0, mid - seconds / 2), mid + seconds / 2))
        if "end" in where:
            spans.append(("end", max(0.0, duration - seconds), math.inf))
    return spans


class _YuvSprite:
    """A sprite in Y'CbCr with alpha at luma and at chroma resolution, for 4:2:0 planes."""

    def __init__(self, rgba: np.ndarray[Any, Any], hd: bool, full_range: bool) -> None:
        h, w = rgba.shape[:2]
        ph, pw = h + h % 2, w + w % 2
        padded = np.zeros((ph, pw, 4), np.float32)
        padded[:h, :w] = rgba
        r, g, b = padded[..., 0], padded[..., 1], padded[..., 2]
        kr, kb = (0.2126, 0.0722) if hd else (0.299, 0.114)
        y = kr * r + (1 - kr - kb) * g + kb * b
        cb = (b - y) / (2 * (1 - kb))
        cr = (r - y) / (2 * (1 - kr))
        if full_range:
            self.y, cb, cr = y, cb + 128, cr + 128
        else:
            self.y, cb, cr = 16 + y * 219 / 255, 128 + cb * 224 / 255, 128 + cr * 224 / 255
        self.alpha = padded[..., 3] / 255.0
        blocks = self.alpha.reshape(ph // 2, 2, pw // 2, 2)
        self.alpha_c = blocks.mean(axis=(1, 3))
        weight = np.maximum(blocks.sum(axis=(1, 3)), 1e-6)
        self.cb = (cb.reshape(ph // 2, 2, pw // 2, 2) * blocks).sum(axis=(1, 3)) / weight
        self.cr = (cr.reshape(ph // 2, 2, pw // 2, 2) * blocks).sum(axis=(1, 3)) / weight
        self.shape = (ph, pw)


def _blend(plane: np.ndarray[Any, Any], x: int, y: int, colour: Any, alpha: Any) -> None:
    h, w = alpha.shape
    region = plane[y : y + h, x : x + w].astype(np.float32)
    plane[y : y + h, x : x + w] = np.clip(colour * alpha + region * (1 - alpha) + 0.5, 0, 255).astype(
        np.uint8
    )


class _Labeler:
    """Draws one label (sprite, stored-orientation box) on decoded frames."""

    def __init__(
        self,
        text: str,
        position: str,
        fraction: float,
        width: int,
        height: int,
        orientation: int,
    ) -> None:
        self.text = text
        self.position = position
        self.orientation = orientation
        self.size = (width, height)
        dw, dh = (height, width) if orientation >= 5 else (width, height)
        self.display = (dw, dh)
        self.ink_px = _render.target_ink(text, dw, dh, fraction)
        self.fraction = 0.0
        self.style = ""
        self.box = (0, 0, 0, 0)
        self.font_size = 0
        self._rgba: np.ndarray[Any, Any] | None = None
        self._yuv: _YuvSprite | None = None

    def prepare(self, frame: av.VideoFrame) -> None:
        """Choose the style from the pixels under the label in ``frame``; fix box and sprite."""
        probe = _render.make_sprite(self.text, self.ink_px, "plate")
        x, y = _render.plan_box(*self.display, probe.size, self.position)
        pbox = _render.display_box_to_stored(
            (x, y, x + probe.size[0], y + probe.size[1]), self.size, self.orientation
        )
        rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        style, _ = _render.choose_style(rgb[pbox[1] : pbox[3], pbox[0] : pbox[2]])
        sprite = _render.make_sprite(self.text, self.ink_px, style)
        x, y = _render.plan_box(*self.display, sprite.size, self.position)
        box = _render.display_box_to_stored(
            (x, y, x + sprite.size[0], y + sprite.size[1]), self.size, self.orientation
        )
        rgba = _render.to_stored(sprite.rgba, self.orientation)
        # 4:2:0 chroma: start on even coordinates (the sprite has transparent margins to spare)
        x0, y0 = box[0] - box[0] % 2, box[1] - box[1] % 2
        self.box = (x0, y0, x0 + rgba.shape[1], y0 + rgba.shape[0])
        self._rgba = rgba
        self.style = sprite.style
        self.fraction = sprite.ink_height / min(self.display)
        hd = min(self.size) >= 720
        self._yuv = _YuvSprite(rgba, hd, frame.color_range == 2)
        self.font_size = sprite.font_size

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        assert self._rgba is not None and self._yuv is not None
        x0, y0 = self.box[:2]
        fmt = frame.format.name
        w, h = self.size
        yuv = self._yuv
        if (
            fmt in ("yuv420p", "yuvj420p")
            and w % 2 == 0
            and h % 2 == 0
            and x0 + yuv.shape[1] <= w
            and y0 + yuv.shape[0] <= h
        ):
            arr = frame.to_ndarray()
            luma = arr[:h]
            chroma = arr[h:].reshape(2, h // 2, w // 2)
            _blend(luma, x0, y0, yuv.y, yuv.alpha)
            _blend(chroma[0], x0 // 2, y0 // 2, yuv.cb, yuv.alpha_c)
            _blend(chroma[1], x0 // 2, y0 // 2, yuv.cr, yuv.alpha_c)
            out = av.VideoFrame.from_ndarray(arr, format=fmt)
        else:
            rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            rh, rw = self._rgba.shape[:2]
            region = rgb[y0 : y0 + rh, x0 : x0 + rw]
            rgb[y0 : y0 + rh, x0 : x0 + rw] = _render.composite(
                region, self._rgba[: region.shape[0], : region.shape[1]]
            )
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
        out.pts = frame.pts
        out.time_base = frame.time_base
        out.color_range = frame.color_range
        out.colorspace = frame.colorspace
        return out


def _open_input(src: Path) -> av.container.InputContainer:
    try:
        return av.open(str(src), mode="r")
    except FileNotFoundError:
        raise UsageError(f"{src}: no such file") from None
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"cannot open as video: {exc}", path=src) from None


def _first_frame(src: Path) -> av.VideoFrame:
    with _open_input(src) as probe:
        try:
            for frame in probe.decode(video=0):
                assert isinstance(frame, av.VideoFrame)
                return frame
        except av.FFmpegError as exc:
            raise CorruptMediaError(f"cannot decode video: {exc}", path=src) from None
    raise CorruptMediaError("no video frame could be decoded", path=src)


def label_video_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    settings: Any,
    progress: ProgressCallback | None = None,
) -> VisibleResult:
    """Write ``src`` with the visible label on its opening frames (and middle/end if configured)
    to ``dst`` atomically, keeping the container format and every stream's parameters.

    Raises ``UnsupportedFormatError`` for a container without a video stream or a codec with no
    encoder here, ``CorruptMediaError`` for undecodable input; ``src`` is never modified.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise UsageError(f"{src}: output must differ from the input (inputs are never modified)")
    wording = wording_from_settings(settings)
    text = wording.text("short", bilingual=bool(getattr(settings, "visible_bilingual", False)))
    check_renderable(text)
    seconds = float(getattr(settings, "visible_video_seconds", 2.0))
    where = tuple(getattr(settings, "visible_video_where", ("start",)))
    position = str(getattr(settings, "visible_position", "bottom-right"))
    fraction = float(getattr(settings, "visible_min_glyph_fraction", 0.05))
    with _open_input(src) as inp:
        if not inp.streams.video:
            raise UnsupportedFormatError("container without a video stream", path=src)
        vin = inp.streams.video[0]
        codec = vin.codec_context.name
        encoder = ENCODERS.get(codec, codec)
        if encoder not in av.codecs_available:
            raise UnsupportedFormatError(f"{codec} video", path=src, hint="no encoder for it here")
        vin.thread_type = "AUTO"
        tb = vin.time_base or Fraction(1, 90000)
        duration: float | None = None
        if vin.duration:
            duration = float(vin.duration * tb)
        elif inp.duration:
            duration = inp.duration / 1_000_000
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        expected = vin.frames or (round(duration * rate) if duration else None)
        spans = _spans(where, seconds, duration)
        details: dict[str, Any] = {
            "codec": codec,
            "encoder": encoder,
            "width": vin.codec_context.width,
            "height": vin.codec_context.height,
            "pix_fmt": vin.codec_context.pix_fmt,
            "time_base": str(tb),
            "frame_rate": str(rate),
            "copied_streams": [],
            "dropped_streams": [],
        }
        first = _first_frame(src)
        plan = _plan_splice(inp, vin, src, dst, spans)
        splice = plan if isinstance(plan, _Splice) else None
        if splice is None:
            details["why_reencoded"] = plan
        try:
            with atomic_output(dst) as fh:
                _transcode(
                    inp,
                    vin,
                    first,
                    fh,
                    dst,
                    encoder,
                    text,
                    position,
                    fraction,
                    spans,
                    details,
                    progress,
                    expected,
                    splice,
                )
        except av.FFmpegError as exc:
            raise CorruptMediaError(f"cannot re-encode video: {exc}", path=src) from None
    placements = details.pop("placements")
    if details["labelled_frames"] == 0:
        raise CorruptMediaError("no video frame could be decoded", path=src)
    return VisibleResult(
        modality="video",
        wording=text,
        placements=placements,
        glyph_height_fraction=details["glyph_height_fraction"],
        details=details,
        conforms=details["glyph_height_fraction"] >= 0.05
        and details["start_span_s"] >= min(seconds, details["duration_s"]),
    )


@dataclasses.dataclass
class _Splice:
    """Which GOPs are re-encoded: ``segments`` of source pts, each from an IDR (or the first
    packet) to the IDR where copying resumes (``None``: to the end); everything else is copied."""

    segments: list[tuple[int, int | None]]
    delay: int
    options: dict[str, str]
    length_size: int
    avcc: bytes

    def encoder(self, vin: Any) -> Any:
        """A fresh libx264 encoder for one segment (it starts with an IDR frame)."""
        return _x264(vin, self.options)


def _x264(vin: Any, options: dict[str, str]) -> Any:
    ctx = vin.codec_context
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.video.codeccontext.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = ctx.width, ctx.height, ctx.pix_fmt
    encoder.time_base = vin.time_base
    encoder.framerate = vin.average_rate or vin.guessed_rate or Fraction(25)
    if vin.sample_aspect_ratio:
        encoder.sample_aspect_ratio = vin.sample_aspect_ratio
    for attr in ("color_primaries", "color_trc", "colorspace", "color_range"):
        with contextlib.suppress(AttributeError, ValueError, TypeError):
            setattr(encoder, attr, getattr(ctx, attr))
    encoder.options = dict(options)
    encoder.flags |= av.codec.context.Flags.global_header
    encoder.thread_type = "AUTO"
    encoder.open()
    return encoder


def _segments(
    packets: list[tuple[int, int, bool]], spans: list[tuple[str, float, float]], tb: Fraction
) -> list[tuple[int, int | None]] | str:
    """Source-pts ranges to re-encode so that every labelled frame is re-encoded, each starting and
    ending at a closed IDR; or why there are none."""
    first_pts = min(p[0] for p in packets)

    def closed(index: int) -> bool:
        pts = packets[index][0]
        return all(p[0] < pts for p in packets[:index]) and all(p[0] >= pts for p in packets[index:])

    cuts = [i for i, (_, _, idr) in enumerate(packets) if i > 0 and idr and closed(i)]
    segments: list[tuple[int, int | None]] = []
    for _name, t0, t1 in spans:
        begin = max((i for i in cuts if (packets[i][0] - first_pts) * tb <= t0), default=0)
        end = min((i for i in cuts if (packets[i][0] - first_pts) * tb >= t1), default=None)
        start_pts = packets[begin][0] if begin else packets[0][0]
        end_pts = packets[end][0] if end is not None else None
        if segments and (segments[-1][1] is None or start_pts <= segments[-1][1]):
            previous_end = segments[-1][1]
            merged_end = None if previous_end is None or end_pts is None else max(previous_end, end_pts)
            segments[-1] = (segments[-1][0], merged_end)
        else:
            segments.append((start_pts, end_pts))
    if segments == [(packets[0][0], None)]:
        if len(spans) == 1:
            return f"no closed IDR frame after {spans[0][2]:g} s to resume copying at"
        return "the GOPs around the labelled spans make up the whole video"
    return segments


def _plan_splice(
    inp: av.container.InputContainer, vin: Any, src: Path, dst: Path, spans: list[tuple[str, float, float]]
) -> _Splice | str:
    """Re-encode only the GOPs that carry a label (H.264 in MP4/MOV/Matroska), or say why the
    whole stream must be re-encoded."""
    ctx = vin.codec_context
    if ctx.name != "h264" or "libx264" not in av.codecs_available:
        return f"{ctx.name} video: only H.264 GOPs are spliced"
    if _muxer(inp.format.name, dst) not in ("mp4", "mov", "matroska"):
        return f"{inp.format.name} container: splicing needs an avcC decoder configuration"
    try:
        config = _h264.AvcConfig.parse(bytes(ctx.extradata or b""))
        ids = [_h264.parameter_set_id(n) for n in config.sps + config.pps]
    except (ValueError, IndexError):
        return "the H.264 decoder configuration is not avcC"
    if max(ids) >= 31 or len(config.sps) >= 31:
        return "no free parameter set id"
    profile = _X264_PROFILES.get(config.sps[0][1])
    if profile is None:
        return f"H.264 profile {config.sps[0][1]} has no libx264 equivalent"
    tb = vin.time_base
    packets: list[tuple[int, int, bool]] = []
    with _open_input(src) as probe:
        for packet in probe.demux(probe.streams.video[0]):
            if packet.size == 0 or packet.pts is None or packet.dts is None:
                continue
            idr = packet.is_keyframe and _h264.IDR in _h264.nal_types(bytes(packet), config.length_size)
            packets.append((packet.pts, packet.dts, idr))
    if not packets or tb is None:
        return "no timestamps to splice at"
    segments = _segments(packets, spans, tb)
    if isinstance(segments, str):
        return segments
    # the re-encoded frames have no B-frames, so their dts is their pts less the source's delay;
    # that lines up with the copied packets only if the delay is the same at every cut
    by_pts = {pts: pts - dts for pts, dts, _ in packets}
    delays = {by_pts[pts] for segment in segments for pts in segment if pts is not None}
    if len(delays) != 1 or min(delays) < 0:
        return "the source's decoding delay differs between keyframes"
    # the source's profile and level, so a decoder set up from the avcC record (which names the
    # source's) decodes the new slices too
    params = f"sps-id={max(ids) + 1}:bframes=0:level={config.sps[0][3] / 10:g}"
    options = {**ENCODER_OPTIONS["libx264"], "profile": profile, "x264-params": params}
    nals = _h264.annexb_nals(bytes(_x264(vin, options).extradata or b""))
    new_sps = [n for n in nals if n[0] & 0x1F == _h264.SPS]
    new_pps = [n for n in nals if n[0] & 0x1F == _h264.PPS]
    if not new_sps or not new_pps:
        return "the encoder gave no parameter sets"
    return _Splice(
        segments=segments,
        delay=delays.pop(),
        options=options,
        length_size=config.length_size,
        avcc=config.with_sets(new_sps, new_pps).to_bytes(),
    )


def _transcode(
    inp: av.container.InputContainer,
    vin: av.video.stream.VideoStream,
    first: av.VideoFrame,
    fh: Any,
    dst: Path,
    encoder: str,
    text: str,
    position: str,
    fraction: float,
    spans: list[tuple[str, float, float]],
    details: dict[str, Any],
    progress: ProgressCallback | None,
    expected: int | None,
    splice: _Splice | None,
) -> None:
    ctx = vin.codec_context
    with av.open(fh, mode="w", format=_muxer(inp.format.name, dst)) as out:
        out.metadata.update(inp.metadata)
        rate: Fraction = vin.average_rate or vin.guessed_rate or Fraction(25)
        if splice is not None:
            details["reencoded_segments"] = (
                [
                    [float(a * vin.time_base), None if b is None else float(b * vin.time_base)]
                    for a, b in splice.segments
                ]
                if vin.time_base
                else []
            )
            vout: Any = out.add_stream_from_template(vin)
            vout.codec_context.extradata = splice.avcc
        else:
            vout = add_matching_video_stream(out, vin, encoder, rate, ENCODER_OPTIONS)
        vout.metadata.update({k: v for k, v in vin.metadata.items() if k != "rotate"})
        copies: dict[int, Any] = {}
        for stream in inp.streams:
            if stream.index == vin.index:
                continue
            if stream.type in _COPY_TYPES:
                copies[stream.index] = out.add_stream_from_template(stream)
                copies[stream.index].metadata.update(stream.metadata)
                details["copied_streams"].append(f"{stream.index}:{stream.type}:{stream.codec_context.name}")
            else:
                details["dropped_streams"].append(f"{stream.index}:{stream.type}")
        # the display matrix must be set before the header is written, which the first copied
        # packet may do: rotation and style come from a first frame decoded on its own
        rotation = int(first.rotation or 0) % 360
        orientation = _ORIENTATION_OF_ROTATION.get(rotation, 1)
        if rotation and splice is None:  # a template stream carries the source's matrix already
            vout.set_display_rotation(rotation)
        details["rotation"] = rotation
        labeler = _Labeler(text, position, fraction, ctx.width, ctx.height, orientation)
        labeler.prepare(first)
        labelled = [0] * len(spans)
        span_frames: list[list[float]] = [[] for _ in spans]
        first_pts: int | None = None
        done = 0
        copied = 0
        last_t = 0.0
        step = 1 / float(rate)

        segment_encoder: Any = None  # the current segment's encoder when splicing

        def mux_encoded(frame: av.VideoFrame | None) -> None:
            if splice is None:
                for packet in vout.encode(frame):
                    out.mux(packet)
                return
            for packet in segment_encoder.encode(frame):
                nals = [
                    n for n in _h264.annexb_nals(bytes(packet)) if n[0] & 0x1F not in (_h264.SPS, _h264.PPS)
                ]
                spliced = av.Packet(_h264.length_prefixed(nals, splice.length_size))
                spliced.pts, spliced.dts = packet.pts, packet.pts - splice.delay
                spliced.time_base = vin.time_base or Fraction(1, 90000)
                spliced.is_keyframe = packet.is_keyframe
                spliced.stream = vout
                out.mux(spliced)

        def process(frame: av.VideoFrame) -> None:
            nonlocal first_pts, last_t, done
            if frame.time_base is None and vin.time_base is not None:  # frames flushed from the decoder
                frame.time_base = vin.time_base
            pts = frame.pts if frame.pts is not None else 0
            if first_pts is None:
                first_pts = pts
            t = float((pts - first_pts) * vin.time_base) if vin.time_base else done * step
            last_t = max(last_t, t)
            hit = next((i for i, (_, t0, t1) in enumerate(spans) if t0 <= t < t1), None)
            if hit is not None:
                labelled[hit] += 1
                span_frames[hit].append(t)
                frame = labeler.apply(frame)
            frame.pict_type = PictureType.NONE
            mux_encoded(frame)
            done += 1
            if progress is not None:
                progress(done, expected)

        segments = list(splice.segments) if splice is not None else []
        active = splice is None  # decoding and re-encoding (always, without a splice)

        def drain() -> None:
            """End a segment: frames the decoder still holds, then the encoder's."""
            nonlocal segment_encoder
            try:
                held = vin.codec_context.decode(None)
            except av.error.EOFError:  # already drained by the demuxer's final empty packet
                held = []
            for frame in held:
                assert isinstance(frame, av.VideoFrame)
                process(frame)
            mux_encoded(None)
            vin.codec_context.flush_buffers()
            segment_encoder = None

        for packet in inp.demux([vin, *(inp.streams[i] for i in copies)]):
            if packet.stream.index != vin.index:
                if packet.dts is None:
                    continue
                packet.stream = copies[packet.stream.index]
                out.mux(packet)
                continue
            if splice is not None and packet.size and packet.is_keyframe:
                if active and segments and packet.pts == segments[0][1]:
                    drain()
                    segments.pop(0)
                    active = False
                if not active and segments and packet.pts == segments[0][0]:
                    segment_encoder = splice.encoder(vin)
                    active = True
            if active:
                for decoded in packet.decode():
                    assert isinstance(decoded, av.VideoFrame)
                    process(decoded)
            elif packet.size and packet.dts is not None:
                packet.stream = vout
                out.mux(packet)
                copied += 1
                done += 1
                if progress is not None:
                    progress(done, expected)
        if splice is None:
            mux_encoded(None)
        elif active:
            drain()
    details["frames"] = done
    details["method"] = "spliced" if splice is not None else "re-encoded"
    details["copied_frames"] = copied
    details["labelled_frames"] = sum(labelled)
    details["duration_s"] = round(max(last_t + step, done * step), 6)
    details["glyph_height_fraction"] = labeler.fraction
    details["font_size"] = labeler.font_size
    placements: list[dict[str, Any]] = []
    for (name, _t0, _t1), count, times in zip(spans, labelled, span_frames, strict=True):
        if count:
            placements.append(
                {
                    "where": name,
                    "start_s": round(min(times), 6),
                    "end_s": round(max(times) + step, 6),
                    "frames": count,
                    "box": list(labeler.box),
                    "position": position,
                    "style": labeler.style,
                }
            )
    details["start_span_s"] = placements[0]["end_s"] - placements[0]["start_s"] if placements else 0.0
    details["placements"] = placements
