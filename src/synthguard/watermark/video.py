"""The invisible video watermark: the image mark on every frame, found again by pooling frames.

:func:`embed_video_file` decodes the first video stream with PyAV, adds the image watermark (see
``_image_mark``) to the luminance plane of every frame, and re-encodes it with the same codec,
resolution, frame rate, time base, pixel format and colour description (the transcoding follows
``synthguard.visible.video``: the whole stream is re-encoded, since copied packets cannot be spliced
with a new encoder's parameter sets). Audio tracks get the audio watermark when
``synthguard.watermark.audio`` provides ``embed_samples`` (re-encoded with their own codec, sample
rate and layout); otherwise, and for subtitles, packets are copied unchanged. ``details`` of the
result says which happened.

:func:`detect_video_file` samples about ``SAMPLES_PER_SECOND`` frames a second (at most
``MAX_SAMPLES``), sums their grid residuals (the mark is the same on every frame while the picture
changes, so the mark adds up and the content averages out) and decides once on the sum. The p-value
is the image scheme's, computed on the pooled statistic, so it holds for the whole video. This
survives H.264 at CRF 28, scaling to 720p, and any excerpt of 3 s or more.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, cast

import av
import av.audio.stream
import av.container
import av.video
import numpy as np
import numpy.typing as npt
from av.video.frame import PictureType
from PIL import Image

from synthguard._codecs import VIDEO_ENCODERS, add_matching_video_stream
from synthguard._io import atomic_output
from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, UnsupportedFormatError, UsageError
from synthguard.watermark import _image_mark
from synthguard.watermark.base import WatermarkDetection, payload_bits, watermark_secret
from synthguard.watermark.image import to_detection

__all__ = [
    "ENCODERS",
    "MAX_SAMPLES",
    "SAMPLES_PER_SECOND",
    "VIDEO_GRID",
    "VIDEO_SCHEME",
    "detect_video_file",
    "embed_video_file",
]

#: The scheme's stable name (reported in every detection).
VIDEO_SCHEME: Final = "synthguard-video-v1"
#: Encoder used for each source codec.
ENCODERS: Final = VIDEO_ENCODERS
#: Near-transparent quality: the mark must not be lost in the re-encoding that carries it.
ENCODER_OPTIONS: Final = {
    "libx264": {"crf": "12", "preset": "veryfast"},
    "libx265": {"crf": "14", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "16", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    "libvpx": {"crf": "8", "b": "4M", "deadline": "realtime", "cpu-used": "8"},
    "libsvtav1": {"crf": "24", "preset": "10"},
}
#: Audio encoder for each source codec, when the audio is re-encoded with its own mark.
AUDIO_ENCODERS: Final = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus", "vorbis": "libvorbis"}
#: Cells on the short side of the video's grid: coarser than the image's (256), because video codecs
#: at ordinary rates remove fine low-contrast texture; the many frames pooled make up for the
#: fewer cells.
VIDEO_GRID: Final = 96
#: Strength of the mark on each frame (luminance RMS, 8-bit levels; 42 dB), leaving room for the
#: re-encoding's own loss within the 40 dB the issue asks of the marked video.
VIDEO_RMS: Final = 2.0
#: Frames a second the detector looks at, and the most it pools.
SAMPLES_PER_SECOND: Final = 10.0
MAX_SAMPLES: Final = 240
#: 8-bit formats whose first plane is the luminance at full resolution.
_LUMA_FIRST: Final = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"})
_COPY_TYPES: Final = ("audio", "subtitle")

EmbedSamples = Callable[[npt.NDArray[np.float32], int, str, bytes], npt.NDArray[np.float32]]


def _muxer(input_format: str, dst: Path) -> str:
    names = input_format.split(",")
    suffix = dst.suffix.lower()
    if "mp4" in names or "mov" in names:
        return "mov" if suffix == ".mov" else "mp4"
    if "matroska" in names or "webm" in names:
        return "webm" if suffix == ".webm" else "matroska"
    return names[0]


def _open_input(src: Path) -> av.container.InputContainer:
    try:
        return av.open(str(src), mode="r")
    except FileNotFoundError:
        raise UsageError(f"{src}: no such file") from None
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise CorruptMediaError(f"cannot open as video: {exc}", path=src) from None


def _plane(frame: av.VideoFrame, index: int) -> npt.NDArray[np.uint8]:
    """A view of plane ``index`` without its line padding."""
    plane = frame.planes[index]
    rows = np.frombuffer(cast(Any, plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    view: npt.NDArray[np.uint8] = rows[:, : plane.width]
    return view


def _luma(frame: av.VideoFrame) -> Image.Image:
    if frame.format.name in _LUMA_FIRST:
        return Image.fromarray(np.ascontiguousarray(_plane(frame, 0)))
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    return image.convert("L")


class _Marker:
    """Marks frames: a new frame with the luminance changed, everything else copied."""

    def __init__(self, secret: bytes, produce_id: str) -> None:
        self.secret = secret
        self.bits = payload_bits(produce_id)

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        source_format = frame.format.name
        work = frame if source_format in _LUMA_FIRST else frame.reformat(format="yuv444p")
        luma = _plane(work, 0)
        delta = _image_mark.mark_delta(
            Image.fromarray(np.ascontiguousarray(luma)),
            self.secret,
            self.bits,
            grid=VIDEO_GRID,
            rms=VIDEO_RMS,
        )
        out = av.VideoFrame(work.width, work.height, work.format.name)
        for index in range(len(work.planes)):
            target = _plane(out, index)
            if index == 0:
                target[...] = np.clip(luma.astype(np.int16) + np.rint(delta).astype(np.int16), 0, 255)
            else:
                target[...] = _plane(work, index)
        if source_format not in _LUMA_FIRST:
            out = out.reformat(format=source_format)
        out.pts = frame.pts
        out.time_base = frame.time_base
        with contextlib.suppress(AttributeError, ValueError, TypeError):
            out.color_range = frame.color_range
            out.colorspace = frame.colorspace
        out.pict_type = PictureType.NONE
        return out


def _audio_marker() -> EmbedSamples | None:
    """The audio watermark's ``embed_samples`` when it exists and works on a probe, else None."""
    try:
        module = importlib.import_module("synthguard.watermark.audio")
    except ImportError:
        return None
    embed = getattr(module, "embed_samples", None)
    if not callable(embed):
        return None
    probe = np.zeros((2, 48000), dtype=np.float32)
    try:
        marked = np.asarray(embed(probe, 48000, "0000000000000000", b"probe-key-0123456789"))
    except Exception:  # a broken audio module must not stop video marking: audio is copied
        return None
    return embed if marked.shape == probe.shape else None


def embed_video_file(src: Path, dst: Path, produce_id: str, settings: Settings) -> dict[str, Any]:
    """Write ``src`` with the watermark on every frame (and its audio marked) to ``dst``, atomically.

    Returns what was done (codec, encoder, frames, streams copied or marked). Raises ``ConfigError``
    without a watermark key, ``UnsupportedFormatError`` for a container without video, a codec
    without an encoder here or frames under 256 pixels on the short side, ``CorruptMediaError`` for
    undecodable input. ``src`` is never modified.
    """
    src, dst = Path(src), Path(dst)
    secret = watermark_secret(settings)
    marker = _Marker(secret, produce_id)
    if src.resolve() == dst.resolve():
        raise UsageError(f"{src}: output must differ from the input (inputs are never modified)")
    with _open_input(src) as inp:
        if not inp.streams.video:
            raise UnsupportedFormatError("container without a video stream", path=src)
        vin = inp.streams.video[0]
        ctx = vin.codec_context
        if min(ctx.width, ctx.height) < _image_mark.MIN_EMBED_SIDE:
            raise UnsupportedFormatError(
                f"video of {ctx.width}x{ctx.height} pixels",
                path=src,
                hint=f"an invisible watermark needs at least {_image_mark.MIN_EMBED_SIDE} pixels",
            )
        encoder = ENCODERS.get(ctx.name, ctx.name)
        if encoder not in av.codecs_available:
            raise UnsupportedFormatError(f"{ctx.name} video", path=src, hint="no encoder for it here")
        details: dict[str, Any] = {
            "codec": ctx.name,
            "encoder": encoder,
            "width": ctx.width,
            "height": ctx.height,
            "pix_fmt": ctx.pix_fmt,
            "time_base": str(vin.time_base),
            "copied_streams": [],
            "marked_audio": [],
            "dropped_streams": [],
        }
        try:
            with atomic_output(dst) as fh:
                _transcode(inp, vin, fh, dst, encoder, marker, produce_id, details)
        except av.FFmpegError as exc:
            raise CorruptMediaError(f"cannot re-encode video: {exc}", path=src) from None
    if details["frames"] == 0:
        raise CorruptMediaError("no video frame could be decoded", path=src)
    return details


def _transcode(
    inp: av.container.InputContainer,
    vin: av.video.stream.VideoStream,
    fh: Any,
    dst: Path,
    encoder: str,
    marker: _Marker,
    produce_id: str,
    details: dict[str, Any],
) -> None:
    embed_audio = _audio_marker()
    with av.open(fh, mode="w", format=_muxer(inp.format.name, dst)) as out:
        out.metadata.update(inp.metadata)
        rate: Fraction = vin.average_rate or vin.guessed_rate or Fraction(25)
        vout = add_matching_video_stream(out, vin, encoder, rate, ENCODER_OPTIONS)
        vout.metadata.update({k: v for k, v in vin.metadata.items() if k != "rotate"})
        copies: dict[int, Any] = {}
        audio: dict[int, _AudioTrack] = {}
        for stream in inp.streams:
            if stream.index == vin.index:
                continue
            name = f"{stream.index}:{stream.type}:{stream.codec_context.name}"
            audio_encoder = AUDIO_ENCODERS.get(stream.codec_context.name, "")
            if stream.type == "audio" and embed_audio is not None and audio_encoder in av.codecs_available:
                audio[stream.index] = _AudioTrack(stream, out, audio_encoder)
                details["marked_audio"].append(name)
            elif stream.type in _COPY_TYPES:
                copies[stream.index] = out.add_stream_from_template(stream)
                copies[stream.index].metadata.update(stream.metadata)
                details["copied_streams"].append(name)
            else:
                details["dropped_streams"].append(f"{stream.index}:{stream.type}")
        if embed_audio is None and any(s.type == "audio" for s in inp.streams):
            details["audio_note"] = "synthguard.watermark.audio is not available: audio copied unmarked"
        frames = 0

        def encode(frame: av.VideoFrame | None) -> None:
            for packet in vout.encode(frame):
                out.mux(packet)

        for packet in inp.demux([vin, *(inp.streams[i] for i in (*copies, *audio))]):
            index = packet.stream.index
            if index in copies:
                if packet.dts is None:
                    continue
                packet.stream = copies[index]
                out.mux(packet)
            elif index in audio:
                audio[index].collect(packet)
            else:
                for frame in packet.decode():
                    assert isinstance(frame, av.VideoFrame)
                    encode(marker.apply(frame))
                    frames += 1
        encode(None)
        for track in audio.values():
            assert embed_audio is not None
            track.finish(embed_audio, produce_id, marker.secret)
            if track.error:
                details.setdefault("audio_errors", []).append(track.error)
    details["frames"] = frames


class _AudioTrack:
    """An audio stream decoded whole, marked with the audio watermark and re-encoded."""

    def __init__(self, stream: Any, out: av.container.OutputContainer, encoder: str) -> None:
        ctx = stream.codec_context
        self.stream = stream
        self.rate = int(ctx.sample_rate)
        self.layout = ctx.layout.name
        self.frames: list[npt.NDArray[np.float32]] = []
        self.out = out
        output = out.add_stream(encoder, rate=self.rate, layout=self.layout)
        assert isinstance(output, av.audio.stream.AudioStream)
        self.output = output
        if ctx.bit_rate:
            self.output.bit_rate = ctx.bit_rate
        self.output.metadata.update(stream.metadata)
        self.first_pts: int | None = None
        self.error = ""
        self.to_float = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)

    def collect(self, packet: Any) -> None:
        for frame in packet.decode():
            assert isinstance(frame, av.AudioFrame)
            if self.first_pts is None and frame.pts is not None:
                self.first_pts = frame.pts
            for converted in self.to_float.resample(frame):
                planar = converted.to_ndarray().astype(np.float32)
                self.frames.append(planar.reshape(len(converted.layout.channels), -1))

    def finish(self, embed: EmbedSamples, produce_id: str, secret: bytes) -> None:
        if not self.frames:
            return
        samples = np.concatenate(self.frames, axis=1)
        try:
            marked = np.asarray(embed(samples, self.rate, produce_id, secret), dtype=np.float32)
        except Exception as exc:  # the audio module's failure: keep the audio, unmarked, and say so
            self.error = f"audio watermark failed ({exc}); audio re-encoded unmarked"
            marked = samples
        if marked.shape != samples.shape:
            self.error = "audio watermark changed the signal's shape; audio re-encoded unmarked"
            marked = samples
        resampler = av.AudioResampler(format=self.output.codec_context.format, layout=self.layout)
        chunk = 1024
        for start in range(0, marked.shape[1], chunk):
            piece = np.ascontiguousarray(marked[:, start : start + chunk])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = start
            frame.time_base = Fraction(1, self.rate)
            for converted in resampler.resample(frame):
                for packet in self.output.encode(converted):
                    self.out.mux(packet)
        for packet in self.output.encode(None):
            self.out.mux(packet)


def detect_video_file(path: Path, settings: Settings) -> WatermarkDetection:
    """Look for the configured key's mark in the video at ``path``, pooling sampled frames.

    ``details`` adds the frames pooled. Raises ``ConfigError`` without a key, ``CorruptMediaError``
    for an unreadable file, ``UnsupportedFormatError`` when there is no video stream.
    """
    path = Path(path)
    secret = watermark_secret(settings)
    threshold = settings.watermark_p_threshold
    with _open_input(path) as inp:
        if not inp.streams.video:
            raise UnsupportedFormatError("container without a video stream", path=path)
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = float(vin.average_rate or vin.guessed_rate or 25)
        every = max(1, round(rate / SAMPLES_PER_SECOND))
        sums: dict[bool, npt.NDArray[np.float64]] = {}
        passes: tuple[bool, ...] = ()
        pooled = 0
        try:
            for index, frame in enumerate(inp.decode(vin)):
                if index % every:
                    continue
                luma = _luma(frame)
                if not passes:
                    if min(luma.size) < _image_mark.MIN_DETECT_SIDE:
                        break
                    passes = _image_mark.grid_passes(*luma.size, grid=VIDEO_GRID)
                for embed_grid in passes:
                    residual = _image_mark.grid_residual(luma, embed_grid=embed_grid, grid=VIDEO_GRID)
                    if embed_grid in sums:
                        sums[embed_grid] += residual
                    else:
                        sums[embed_grid] = residual
                pooled += 1
                if pooled >= MAX_SAMPLES:
                    break
        except av.FFmpegError as exc:
            if pooled == 0:
                raise CorruptMediaError(f"cannot decode video: {exc}", path=path) from None
    if pooled == 0:
        return WatermarkDetection(False, None, 1.0, threshold, VIDEO_SCHEME, {"frames_pooled": 0})
    best = _image_mark.search(sums.__getitem__, passes, secret, threshold)
    image_detection = to_detection(best, threshold, frames_pooled=pooled)
    return WatermarkDetection(
        image_detection.found,
        image_detection.produce_id,
        image_detection.p_value,
        threshold,
        VIDEO_SCHEME,
        image_detection.details,
    )
