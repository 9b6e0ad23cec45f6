"""Benchmark: the visible label on a 10 s 1080p30 H.264 clip, side by side with ffmpeg drawtext.

Prints figures, asserts nothing. Run:  .venv/bin/python -m bench.visible_video [--seconds S]

Both sides draw the label on the frames of the first 2 s with the same encoder settings (libx264,
``ENCODER_OPTIONS``) and copy the audio: ffmpeg as ``-vf drawtext=...:enable='lt(t,2)'`` with the
bundled font, re-encoding every frame; synthguard with PyAV in-process, re-encoding only the GOPs up
to the first IDR frame after 2 s and copying the rest (``--gop`` sets the source's keyframe
interval; a source without a keyframe after 2 s is re-encoded whole, like ffmpeg).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from synthguard.config import Settings
from synthguard.visible.font import font_path
from synthguard.visible.video import ENCODER_OPTIONS, label_video_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--gop", type=int, default=60, help="source keyframe interval in frames")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed for the clip and the peer")
    options = ENCODER_OPTIONS["libx264"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.mp4"
        subprocess.run(
            [
                ffmpeg, "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={args.seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={args.seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-g", str(args.gop), "-pix_fmt", "yuv420p",
                "-c:a", "aac", str(src),
            ],
            check=True,
        )  # fmt: skip
        ours: list[float] = []
        result = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = label_video_file(src, Path(tmp) / "ours.mp4", Settings())
            ours.append(time.perf_counter() - start)
        assert result is not None
        size = result.details["font_size"]
        drawtext = (
            f"drawtext=fontfile={font_path()}:text=AI生成:fontsize={size}:fontcolor=white:borderw=4:"
            "bordercolor=black:x=w-tw-27:y=h-th-27:enable='lt(t,2)'"
        )
        peer_cmd = [
            ffmpeg, "-v", "error", "-y", "-i", str(src), "-vf", drawtext,
            "-c:v", "libx264", "-preset", options["preset"], "-crf", options["crf"], "-pix_fmt", "yuv420p",
            "-c:a", "copy", str(Path(tmp) / "ffmpeg.mp4"),
        ]  # fmt: skip
        peer: list[float] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(peer_cmd, check=True)
            peer.append(time.perf_counter() - start)
        frames = result.details["frames"]
        print(
            f"Visible label on {args.seconds:g} s of 1080p30 H.264 ({frames} frames), best of {args.repeat}"
        )
        print(f"  synthguard (PyAV, in-process)   {min(ours):7.2f} s   {frames / min(ours):6.1f} frames/s")
        print(f"  ffmpeg -vf drawtext (process)   {min(peer):7.2f} s   {frames / min(peer):6.1f} frames/s")
        print(f"  ratio synthguard / ffmpeg        {min(ours) / min(peer):7.2f}")
        print(f"  labelled frames: {result.details['labelled_frames']}, encoder libx264 {options}")
        how = result.details["method"]
        if how == "spliced":
            print(
                f"  synthguard re-encoded {frames - result.details['copied_frames']} frames (up to the first"
            )
            print(
                f"  IDR after 2 s; source GOP {args.gop} frames) and copied {result.details['copied_frames']}"
            )
        else:
            print(f"  synthguard re-encoded every frame: {result.details.get('why_reencoded')}")
        print("  (machine shared with other jobs: expect noise; both sides ran in the same minute)")


if __name__ == "__main__":
    main()
