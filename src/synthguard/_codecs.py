"""Which encoder re-encodes a stream of a given codec (PyAV's bundled FFmpeg), and how it is set up
to match its source: shared by every step that must re-encode video (explicit labels, watermarks)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Final

__all__ = ["VIDEO_ENCODERS", "add_matching_video_stream"]

#: Source codec name -> the encoder that writes the same codec.
VIDEO_ENCODERS: Final = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx",
    "av1": "libsvtav1",
    "mpeg4": "mpeg4",
    "mjpeg": "mjpeg",
    "mpeg2video": "mpeg2video",
}


def add_matching_video_stream(
    out: Any, vin: Any, encoder: str, rate: Fraction, options: Mapping[str, Mapping[str, str]]
) -> Any:
    """Add to the output container ``out`` a stream written by ``encoder`` at ``rate`` that keeps the
    input stream ``vin``'s size, pixel format, time base, colour description and sample aspect ratio.

    ``options`` gives each encoder's quality settings; an encoder without any keeps the source's
    bit rate."""
    ctx = vin.codec_context
    vout = out.add_stream(encoder, rate=rate, options=dict(options.get(encoder, {})))
    vout.width, vout.height = ctx.width, ctx.height
    vout.pix_fmt = ctx.pix_fmt
    vout.time_base = vin.time_base
    vout.codec_context.time_base = vin.time_base or Fraction(1, 90000)
    vout.codec_context.thread_type = "AUTO"
    if ctx.bit_rate and encoder not in options:
        vout.bit_rate = ctx.bit_rate
    for attr in ("color_primaries", "color_trc", "colorspace", "color_range"):
        with contextlib.suppress(AttributeError, ValueError, TypeError):
            setattr(vout.codec_context, attr, getattr(ctx, attr))
    if vin.sample_aspect_ratio:
        vout.codec_context.sample_aspect_ratio = vin.sample_aspect_ratio
    return vout
