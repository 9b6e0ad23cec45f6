"""Which encoder re-encodes a stream of a given codec (PyAV's bundled FFmpeg), shared by every
step that must re-encode video (explicit labels, watermarks)."""

from __future__ import annotations

from typing import Final

__all__ = ["VIDEO_ENCODERS"]

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
