"""PDQ hashes of video frames sampled at a fixed interval, decoded with PyAV (FFmpeg).

``hash_video_frames(path)`` returns one ``FrameHash`` per sampling point: the first frame shown at or
after each multiple of ``every_seconds``, with its presentation time in seconds, its ``PdqHash`` as
decoded and the hashes of its eight rotations and flips (``variants``, in ``Dihedral`` order, the first
being ``hash``), all from the same DCT in one call as for images (``dihedral_hashes_of_pixels``).
A frame is matched like an image: ``HashIndex.query(frame.variants)`` searches all eight, so a rotated
or mirrored copy of a known picture is found. A frame hash is as trustworthy as its quality.

Cost: frames are decoded, not only demuxed, but never more of them than needed. Between two sampling
points close together the decoder simply runs on; when the next point lies further ahead than the
keyframe interval seen so far, the decoder seeks to the keyframe before it (FFmpeg's backward seek)
and decodes from there, so sparse sampling of a long video costs about one group of pictures per
sample. A seek that lands behind the current position (keyframes sparser than guessed) decodes
part of a group again, once: it raises the guess, so later seeks happen only across longer gaps.
Frames are scaled by swscale straight to at most 512 px on the long side (area filter) before
hashing, as images are.

Bounds: at most ``max_frames`` hashes. When the duration is known and ``every_seconds`` would need
more samples than that, the interval is widened to cover the whole video evenly (the returned
timestamps show the interval used), so the end of a long video is never silently skipped; when it is
not known, sampling stops after ``max_frames``. A frame larger than the pixel limit
(``ImageReviewConfig.max_pixels``) raises ``MediaLimitError`` before it is converted.

Which files: the container is told from the bytes (``media.identify``), and only the FFmpeg demuxer
for a video container (MP4/MOV, Matroska/WebM, AVI, FLV) is used, never FFmpeg's own probing. Probing
would accept far too much: its ``tty`` demuxer plays any text file as a video, and its playlist
demuxers (HLS, concat) open other files named inside an upload.

Errors: no such file, ``MediaError``; not a video container, ``UnsupportedFormatError`` (an audio
container or a video file without a video stream: "... without a video stream"); a video container
that FFmpeg cannot read (a truncated MP4 without its ``moov``) or data it rejects while decoding,
``CorruptMediaError``. Display rotation metadata is not applied: a frame's ``variants`` cover all eight
rotations and flips, so a frame stored or shown rotated still matches when they are queried.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

import av
import av.container
import av.error
import av.video
import numpy as np
import numpy.typing as npt

from synthguard.errors import (
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
)
from synthguard.media import Container, Modality, identify_path
from synthguard.review.images import (
    DEFAULT_IMAGE_CONFIG,
    REDUCE_TO,
    ImageReviewConfig,
    PdqHash,
    dihedral_hashes_of_pixels,
)

__all__ = ["DEFAULT_MAX_FRAMES", "FrameHash", "hash_video_frames"]

#: Default cap on frames hashed per video (about 17 minutes at one frame a second).
DEFAULT_MAX_FRAMES: Final = 1000
#: The FFmpeg demuxer for each video container ``media.identify`` recognises; no other is ever probed.
_DEMUXERS: Final = {
    Container.MP4: "mov",
    Container.MOV: "mov",
    Container.MATROSKA: "matroska",
    Container.WEBM: "matroska",
    Container.AVI: "avi",
    Container.FLV: "flv",
}
#: Initial guess of the keyframe interval (seconds): a target further ahead than this is sought.
_SEEK_GAP: Final = 2.0
#: Frame times are rationals turned to floats; this absorbs the rounding.
_EPSILON: Final = 1e-6


class FrameHash(NamedTuple):
    """A sampled frame: when it is shown (seconds), its hash as decoded, and the hashes of its eight
    rotations and flips in ``Dihedral`` order (``variants[0] == hash``; empty when not computed)."""

    time: float
    hash: PdqHash
    variants: tuple[PdqHash, ...] = ()


def hash_video_frames(
    path: str | os.PathLike[str],
    every_seconds: float = 1.0,
    max_frames: int = DEFAULT_MAX_FRAMES,
    *,
    config: ImageReviewConfig = DEFAULT_IMAGE_CONFIG,
) -> list[FrameHash]:
    """Hashes of the first video stream's frames at ``0, every_seconds, 2 * every_seconds...``
    (from the stream's start), in time order. See the module docstring for bounds and errors."""
    if not every_seconds > 0:
        raise UsageError(f"every_seconds must be positive, got {every_seconds}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise UsageError(f"max_frames must be a positive integer, got {max_frames!r}")
    path = Path(path)
    kind, demuxer = _demuxer(path)
    try:
        container = av.open(os.fspath(path), mode="r", format=demuxer)
    except FileNotFoundError:
        raise MediaError("no such file", path=path) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise CorruptMediaError(
            f"FFmpeg cannot read this file (truncated or damaged): {exc}", path=path
        ) from None
    try:
        with container:
            return _sample(container, kind, float(every_seconds), max_frames, config)
    except MediaError as exc:
        raise exc.with_path(path) from None
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(f"cannot decode video: {exc}", path=path) from None


def _sample(
    container: av.container.InputContainer,
    kind: Container,
    every: float,
    max_frames: int,
    config: ImageReviewConfig,
) -> list[FrameHash]:
    if not container.streams.video:
        raise UnsupportedFormatError(f"{kind.value} without a video stream", hint="nothing to hash")
    stream = container.streams.video[0]
    limit = config.pixel_limit()
    _check_pixels(stream.codec_context.width, stream.codec_context.height, limit)
    time_base = stream.time_base
    start = float(stream.start_time * time_base) if stream.start_time is not None and time_base else 0.0
    duration = _duration(container, stream)
    if duration is not None and duration / every > max_frames:
        every = duration / max_frames

    hashes: list[FrameHash] = []
    target = start
    position: float | None = None  # time of the last frame decoded
    sought_from: float | None = None  # position when the last seek was made
    keyframe_gap = _SEEK_GAP
    frames = _decode(container, stream)
    while len(hashes) < max_frames:
        frame = next(frames, None)
        if frame is None:
            break
        shown = frame.time if frame.time is not None else (position if position is not None else start)
        if sought_from is not None:
            if shown <= sought_from:
                keyframe_gap = max(keyframe_gap, target - shown)  # keyframes are sparser: seek less
            sought_from = None
        position = shown
        if shown < target - _EPSILON:
            if target - shown > keyframe_gap and time_base:
                container.seek(int(target / time_base), stream=stream, backward=True, any_frame=False)
                frames = _decode(container, stream)
                sought_from = shown
            continue
        _check_pixels(frame.width, frame.height, limit)
        variants = tuple(dihedral_hashes_of_pixels(_rgb(frame)))
        hashes.append(FrameHash(shown, variants[0], variants))
        while target <= shown + _EPSILON:
            target += every
    return hashes


def _demuxer(path: Path) -> tuple[Container, str]:
    """The container of ``path`` (from its bytes) and the one FFmpeg demuxer allowed for it."""
    try:
        container = identify_path(path).container
    except FileNotFoundError:
        raise MediaError("no such file", path=path) from None
    except OSError as exc:
        raise MediaError(f"cannot open: {exc.strerror}", path=path) from None
    demuxer = _DEMUXERS.get(container)
    if demuxer is not None:
        return container, demuxer
    if container.modality is Modality.AUDIO:
        raise UnsupportedFormatError(
            f"{container.value} without a video stream", path=path, hint="nothing to hash"
        )
    raise UnsupportedFormatError(container.value, path=path, hint="not a video container")


def _decode(container: av.container.InputContainer, stream: av.video.VideoStream) -> Iterator[av.VideoFrame]:
    yield from container.decode(stream)


def _duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_pixels(width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise MediaLimitError(
            f"video frames are {width}x{height} pixels, more than the limit of {limit} pixels"
        )


def _rgb(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    width, height = frame.width, frame.height
    if max(width, height) > REDUCE_TO:
        scale = REDUCE_TO / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
    return np.ascontiguousarray(rgb, dtype=np.uint8)
