"""Audible explicit labels (GB 45438 Chapter 5): a prompt inserted into audio files.

The prompt is the rhythm short-long-short-short (Morse "AI", :mod:`synthguard.visible.rhythm`), the
bundled spoken 人工智能生成 (:mod:`synthguard.visible.speech`), or both, one after the other, per the
setting ``visible_audio_prompt``. It is *inserted* (the original audio moves later, nothing is mixed
over it) at the start, the middle and/or the end (``visible_audio_where``), with
``visible_audio_padding_ms`` of silence on each side.

:func:`label_audio_file` decodes and re-encodes with PyAV in one streaming pass (memory flat in the
file's length): same container, codec, sample rate, channel layout and sample format (WAV and FLAC
samples outside the prompt come out bit-exact; lossy codecs are re-encoded at the source's bit
rate), container and stream tags and cover art copied, written atomically. The AIGC metadata label is written
afterwards by the pipeline. Supported: WAV, MP3, FLAC, Ogg Vorbis, Opus and M4A (AAC).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from synthguard._io import atomic_output
from synthguard.errors import (
    ConfigError,
    CorruptMediaError,
    MediaError,
    UnsupportedFormatError,
)
from synthguard.media import Container, identify_path
from synthguard.visible.result import VisibleResult
from synthguard.visible.rhythm import RhythmSpec
from synthguard.visible.speech import SPOKEN_TEXT, spoken_prompt

__all__ = ["AUDIO_PROMPTS", "AUDIO_WHERE", "AudioPrompt", "build_prompt", "label_audio_file"]

AUDIO_PROMPTS: Final = ("rhythm", "speech", "both")
AUDIO_WHERE: Final = ("start", "middle", "end")

#: Container → (muxer, encoder to use for each decoder name).
_MUXER: Final = {
    Container.WAV: "wav",
    Container.MP3: "mp3",
    Container.FLAC: "flac",
    Container.OGG_VORBIS: "ogg",
    Container.OPUS: "ogg",
    Container.M4A: "ipod",
}
_ENCODER: Final = {"mp3": "libmp3lame", "mp3float": "libmp3lame", "opus": "libopus", "aac": "aac"}
#: Encoders FFmpeg marks experimental (its native Vorbis encoder: PyAV bundles no libvorbis).
_EXPERIMENTAL: Final = frozenset({"vorbis"})
#: Containers whose muxer writes attached pictures (cover art) from a picture stream.
_PICTURE_CONTAINERS: Final = frozenset({Container.MP3, Container.FLAC, Container.M4A})
_SCALE: Final = {"s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}
_GAP_BETWEEN_PROMPTS_S: Final = 0.25


@dataclasses.dataclass(frozen=True)
class AudioPrompt:
    """A rendered prompt: mono samples (padding included) and the spans of its parts in seconds."""

    samples: npt.NDArray[np.float64]
    sample_rate: int
    parts: tuple[tuple[str, float, float], ...]
    wording: str

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


def _settings_prompt(settings: Any) -> tuple[str, tuple[str, ...], float]:
    kind = str(getattr(settings, "visible_audio_prompt", "rhythm")).strip().lower()
    if kind not in AUDIO_PROMPTS:
        raise ConfigError(
            f"setting visible_audio_prompt must be one of {', '.join(AUDIO_PROMPTS)}, got {kind!r}"
        )
    where = tuple(str(w).strip().lower() for w in getattr(settings, "visible_audio_where", ("start",)))
    if not where or any(w not in AUDIO_WHERE for w in where):
        raise ConfigError(
            "setting visible_audio_where must name start, middle and/or end, "
            f"got {', '.join(where) or 'nothing'}"
        )
    padding = float(getattr(settings, "visible_audio_padding_ms", 250.0)) / 1000.0
    if not 0.0 <= padding <= 2.0:
        raise ConfigError(f"setting visible_audio_padding_ms must be 0-2000 ms, got {padding * 1000:g}")
    ordered = tuple(w for w in AUDIO_WHERE if w in where)
    return kind, ordered, padding


def build_prompt(settings: Any, sample_rate: int) -> AudioPrompt:
    """The configured prompt at ``sample_rate``: padding, rhythm and/or speech, padding.

    Raises ``ConfigError`` for settings out of range (see ``docs/settings.md``).
    """
    kind, _, padding = _settings_prompt(settings)
    pad = np.zeros(round(padding * sample_rate))
    pieces: list[npt.NDArray[np.float64]] = [pad]
    parts: list[tuple[str, float, float]] = []
    words: list[str] = []
    position = pad.size
    if kind in ("rhythm", "both"):
        spec = RhythmSpec.from_settings(settings)
        rhythm = spec.render(sample_rate)
        pieces.append(rhythm)
        parts.append(("rhythm", position / sample_rate, (position + rhythm.size) / sample_rate))
        position += rhythm.size
        words.append(spec.describe())
    if kind in ("speech", "both"):
        if kind == "both":
            gap = np.zeros(round(_GAP_BETWEEN_PROMPTS_S * sample_rate))
            pieces.append(gap)
            position += gap.size
        speech = spoken_prompt(sample_rate)
        pieces.append(speech)
        parts.append(("speech", position / sample_rate, (position + speech.size) / sample_rate))
        position += speech.size
        words.append(f"spoken {SPOKEN_TEXT}")
    pieces.append(pad)
    return AudioPrompt(
        samples=np.concatenate(pieces),
        sample_rate=sample_rate,
        parts=tuple(parts),
        wording=" + ".join(words),
    )


# -- sample format conversions (exact for the source's own samples) ------------------------------


def _to_native(mono: npt.NDArray[np.float64], fmt: str, channels: int) -> npt.NDArray[Any]:
    """``mono`` floats as a (channels, n) array in the sample format ``fmt`` (packed or planar name)."""
    base = fmt.rstrip("p")
    data = np.clip(mono, -1.0, 1.0)
    native: npt.NDArray[Any]
    if base == "flt":
        native = data.astype(np.float32)
    elif base == "dbl":
        native = data.astype(np.float64)
    elif base == "u8":
        native = np.round(data * 127.0 + 128.0).astype(np.uint8)
    elif base in _SCALE:
        dtype = {"s16": np.int16, "s32": np.int32, "s64": np.int64}[base]
        native = np.round(data * (_SCALE[base] - 1)).astype(dtype)
    else:
        raise UnsupportedFormatError(f"audio sample format {fmt}")
    return np.repeat(native[np.newaxis, :], channels, axis=0)


def _frame_array(frame: av.AudioFrame, channels: int) -> npt.NDArray[Any]:
    """A decoded frame's samples as (channels, n) in its own dtype."""
    array = frame.to_ndarray()
    if frame.format.is_planar:
        return array
    return array.reshape(-1, channels).T


def _make_frame(array: npt.NDArray[Any], fmt: str, layout: str, rate: int) -> av.AudioFrame:
    planar = fmt.endswith("p")
    data = np.ascontiguousarray(array if planar else array.T).reshape(array.shape[0] if planar else 1, -1)
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


# -- the labeler ---------------------------------------------------------------------------------


def _open_input(src: Path) -> av.container.InputContainer:
    try:
        return av.open(os.fspath(src))
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"cannot be read as audio: {exc}", path=src) from None


def _count_samples(src: Path, rate: int) -> int:
    """Samples in the first audio stream: from packet durations (no decoding); where packets carry
    none, from the container's duration; failing that, by decoding."""
    total = Fraction(0)
    missing = False
    with _open_input(src) as container:
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.duration and packet.time_base is not None:
                total += packet.duration * packet.time_base
            else:
                missing = True
        if not missing:
            return int(total * rate)
        if container.duration:
            return int(Fraction(container.duration, av.time_base) * rate)
    with _open_input(src) as container:
        return sum(
            frame.samples
            for frame in container.decode(container.streams.audio[0])
            if isinstance(frame, av.AudioFrame)
        )


def label_audio_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], settings: Any
) -> VisibleResult:
    """Insert the configured audible prompt into ``src`` and write ``dst`` atomically.

    ``placements`` give, per place (``start``, ``middle``, ``end``), the span of the prompt in the
    output in seconds (``start_s``, ``end_s``, padding excluded) and of each part (``rhythm``,
    ``speech``). ``src`` is never modified; on any error ``dst`` is not written.

    Raises ``ConfigError`` (settings), ``UnsupportedFormatError`` (not an audio file this supports,
    or a file with a video stream), ``CorruptMediaError`` (unreadable, or zero-length audio).
    """
    src, dst = Path(src), Path(dst)
    _, where, _ = _settings_prompt(settings)
    try:
        container_kind = identify_path(src).container
    except MediaError as exc:
        raise exc.with_path(src) from None
    except OSError as exc:
        raise CorruptMediaError(f"cannot be read: {exc.strerror or exc}", path=src) from None
    if container_kind not in _MUXER:
        raise UnsupportedFormatError(
            container_kind.value, path=src, hint="audible labels go into WAV, MP3, FLAC, Ogg, Opus, M4A"
        )
    try:
        with atomic_output(dst) as out_file:
            facts = _insert_prompts(src, out_file, container_kind, settings, where)
    except MediaError as exc:
        raise exc.with_path(src) from None
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"audio cannot be decoded or encoded: {exc}", path=src) from None
    prompt: AudioPrompt = facts.pop("prompt")
    offsets: list[tuple[str, float]] = facts.pop("offsets")
    placements = []
    padding = prompt.parts[0][1]
    for place, offset in offsets:
        placements.append(
            {
                "where": place,
                "start_s": round(offset + padding, 4),
                "end_s": round(offset + prompt.parts[-1][2], 4),
                "parts": [
                    {"prompt": name, "start_s": round(offset + a, 4), "end_s": round(offset + b, 4)}
                    for name, a, b in prompt.parts
                ],
            }
        )
    return VisibleResult(
        modality="audio",
        wording=prompt.wording,
        placements=placements,
        glyph_height_fraction=None,
        details=facts,
        conforms=True,
    )


def _insert_prompts(
    src: Path, out_file: Any, kind: Container, settings: Any, where: tuple[str, ...]
) -> dict[str, Any]:
    with _open_input(src) as source:
        audio = next(iter(source.streams.audio), None)
        if audio is None:
            raise UnsupportedFormatError("media without an audio stream", path=src)
        moving = [s for s in source.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if moving:
            raise UnsupportedFormatError(
                f"{kind.value} with a video stream", path=src, hint="label it as a video"
            )
        decoder = audio.codec_context
        rate = decoder.sample_rate
        layout = decoder.layout.name
        channels = decoder.layout.nb_channels
        if not rate or not channels:
            raise CorruptMediaError("audio stream without a sample rate or channels", path=src)
        prompt = build_prompt(settings, rate)
        middle = _count_samples(src, rate) // 2 if "middle" in where else -1

        output = av.open(out_file, "w", format=_MUXER[kind])
        with output:
            output.metadata.update({k: v for k, v in source.metadata.items() if k != "encoder"})
            encoder_name = _ENCODER.get(decoder.name, decoder.name)
            try:
                codec_info = av.Codec(encoder_name, "w")
            except ValueError:  # PyAV UnknownCodecError: a codec FFmpeg decodes but cannot encode
                raise UnsupportedFormatError(
                    f"{kind.value} audio coded as {decoder.name}", path=src, hint="no encoder for it"
                ) from None
            supported = [f.name for f in (codec_info.audio_formats or [])]
            if not supported:
                raise UnsupportedFormatError(f"{kind.value} audio coded as {decoder.name}", path=src)
            target_format = decoder.format.name if decoder.format.name in supported else supported[0]
            stream = output.add_stream(encoder_name, rate=rate, layout=layout, format=target_format)
            codec = stream.codec_context
            if decoder.bit_rate and kind not in (Container.WAV, Container.FLAC):
                codec.bit_rate = decoder.bit_rate
            if encoder_name in _EXPERIMENTAL:
                codec.options = {"strict": "experimental"}
            stream.metadata.update(
                {k: v for k, v in audio.metadata.items() if k not in ("encoder", "ENCODER")}
            )
            stream.time_base = Fraction(1, rate)
            pictures = _copy_pictures(source, output, kind)
            dropped = [
                f"{s.index}:{s.type}"
                for s in source.streams
                if s.index != audio.index and s.index not in pictures
            ]
            writer = _Writer(output, stream, rate, layout, decoder.format.name, target_format)
            native_prompt = _to_native(prompt.samples, decoder.format.name, channels)
            offsets: list[tuple[str, float]] = []

            def insert(place: str) -> None:
                offsets.append((place, writer.written / rate))
                writer.write(native_prompt)

            if "start" in where:
                insert("start")
            consumed = 0
            for frame in _decode_audio(source, audio, output, pictures):
                block = _frame_array(frame, channels)
                n = block.shape[1]
                if 0 <= middle - consumed < n and not any(p == "middle" for p, _ in offsets):
                    cut = middle - consumed
                    writer.write(block[:, :cut])
                    insert("middle")
                    writer.write(block[:, cut:])
                else:
                    writer.write(block)
                consumed += n
            if consumed == 0:
                raise CorruptMediaError("the audio stream holds no samples (zero length)", path=src)
            if "middle" in where and not any(p == "middle" for p, _ in offsets):
                insert("middle")  # packet durations overstated the length: the end is the middle
            if "end" in where:
                insert("end")
            writer.close()
    return {
        "prompt": prompt,
        "offsets": offsets,
        "container": kind.value,
        "codec": decoder.name,
        "encoder": encoder_name,
        "sample_rate": rate,
        "channels": channels,
        "layout": layout,
        "sample_format": decoder.format.name,
        "encoded_sample_format": target_format,
        "bit_rate": decoder.bit_rate or None,
        "duration_in_s": round(consumed / rate, 4),
        "duration_out_s": round(writer.written / rate, 4),
        "inserted_s": round(prompt.duration_s * len(offsets), 4),
        "cover_art_copied": len(pictures),
        # streams other than the first audio stream and its cover art are not carried over
        "dropped_streams": dropped,
    }


def _copy_pictures(source: Any, output: Any, kind: Container) -> dict[int, Any]:
    """Output streams for the source's attached pictures (cover art), by source stream index."""
    copied: dict[int, Any] = {}
    if kind not in _PICTURE_CONTAINERS:
        return copied  # Ogg keeps its cover in a tag (METADATA_BLOCK_PICTURE), copied with the tags
    for picture in source.streams.video:
        if picture.disposition & av.stream.Disposition.attached_pic:
            target = output.add_stream_from_template(picture)
            target.disposition = av.stream.Disposition.attached_pic
            target.metadata.update(picture.metadata)
            copied[picture.index] = target
    return copied


def _decode_audio(source: Any, audio: Any, output: Any, pictures: dict[int, Any]) -> Iterator[av.AudioFrame]:
    """The audio stream's frames; attached-picture packets met on the way are muxed as they are."""
    wanted = [audio, *(s for s in source.streams if s.index in pictures)]
    for packet in source.demux(*wanted):
        if packet.stream.index in pictures:
            if packet.size:
                packet.stream = pictures[packet.stream.index]
                output.mux(packet)
            continue
        for frame in packet.decode():
            if isinstance(frame, av.AudioFrame):
                yield frame


class _Writer:
    """Feeds (channels, n) arrays in the source's sample format to the encoder in blocks of regular
    size with continuous timestamps (PyAV cuts them to a fixed-frame-size encoder's frames),
    converting the sample format only when the encoder cannot take the source's."""

    def __init__(
        self,
        output: Any,
        stream: Any,
        rate: int,
        layout: str,
        source_format: str,
        target_format: str,
    ) -> None:
        self.output = output
        self.stream = stream
        self.rate = rate
        self.layout = layout
        self.source_format = source_format
        self.converter = (
            av.AudioResampler(format=target_format, layout=layout, rate=rate)
            if target_format != source_format
            else None
        )
        self.fifo = av.AudioFifo()
        self.frame_size = stream.codec_context.frame_size or 4096
        self.written = 0
        self.encoded = 0

    def write(self, block: npt.NDArray[Any]) -> None:
        if block.shape[1] == 0:
            return
        frame = _make_frame(block, self.source_format, self.layout, self.rate)
        self.written += block.shape[1]
        for converted in self._convert(frame):
            converted.pts = None
            self.fifo.write(converted)
        self._drain(final=False)

    def _convert(self, frame: av.AudioFrame | None) -> Iterator[av.AudioFrame]:
        if self.converter is None:
            if frame is not None:
                yield frame
            return
        if frame is not None:
            frame.pts = None
        yield from self.converter.resample(frame)

    def _drain(self, *, final: bool) -> None:
        while True:
            frame = self.fifo.read(self.frame_size)
            if frame is None and final:
                frame = self.fifo.read(0)
            if frame is None or frame.samples == 0:
                return
            frame.pts = self.encoded
            frame.time_base = Fraction(1, self.rate)
            self.encoded += frame.samples
            for packet in self.stream.encode(frame):
                self.output.mux(packet)

    def close(self) -> None:
        for converted in self._convert(None):
            converted.pts = None
            self.fifo.write(converted)
        self._drain(final=True)
        for packet in self.stream.encode(None):
            self.output.mux(packet)
