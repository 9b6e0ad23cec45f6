"""Benchmark: the visible label on a 1920x1080 JPEG, split into decode, label and encode.

Prints figures, asserts nothing. Run:  .venv/bin/python -m bench.visible_image [--repeat N]

Target (issue 3): the label step at most 30 ms on top of the codec's own decode and encode. The
peer is ``ffmpeg -vf drawtext`` on the same JPEG with the bundled font (one process per image, so it
includes process start-up), shown for scale.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

from synthguard.config import Settings
from synthguard.visible import _render
from synthguard.visible.font import font_path
from synthguard.visible.image import label_image, label_image_file


def _photo_like(width: int = 1920, height: int = 1080) -> Image.Image:
    """Smooth gradients plus texture and noise: compresses like a photograph, not like a flat fill."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 90 * np.sin(x / 170) * np.cos(y / 130),
            128 + 90 * np.sin((x + y) / 210),
            128 + 90 * np.cos(x / 90 - y / 300),
        ],
        axis=2,
    )
    base += rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    result = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        result.append((time.perf_counter() - start) * 1000)
    return result


def _fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f} ms   best {min(values):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jpg"
        _photo_like().save(src, quality=85)
        data = src.read_bytes()
        settings = Settings()
        with Image.open(src) as probe:
            qtables = [list(t) for _, t in sorted(probe.quantization.items())]
            sampling = JpegImagePlugin.get_sampling(probe)

        def decode() -> Image.Image:
            img = Image.open(io.BytesIO(data))
            img.load()
            return img

        decoded = [decode() for _ in range(args.repeat)]
        _render.make_sprite.cache_clear()
        first = decode()
        start = time.perf_counter()
        label_image(first, "AI生成")
        cold = (time.perf_counter() - start) * 1000

        def encode(img: Image.Image) -> None:
            img.save(io.BytesIO(), "JPEG", qtables=qtables, subsampling=sampling, optimize=True)

        decode_ms = _times(decode, args.repeat)
        label_ms = []
        for img in decoded:
            t0 = time.perf_counter()
            label_image(img, "AI生成")
            label_ms.append((time.perf_counter() - t0) * 1000)
        encode_ms = []
        for img in decoded:
            t0 = time.perf_counter()
            encode(img)
            encode_ms.append((time.perf_counter() - t0) * 1000)
        whole_ms = _times(lambda: label_image_file(src, Path(tmp) / "out.jpg", settings), args.repeat)

        print("Visible label on a 1920x1080 JPEG (quality 85, 4:2:0); figures from one run")
        print(f"  decode (Pillow/libjpeg-turbo)       {_fmt(decode_ms)}")
        print(f"  label  (style, sprite, composite)   {_fmt(label_ms)}   (target <= 30 ms)")
        print(f"  label, first call (font + sprite)   {cold:7.1f} ms")
        print(f"  encode (same tables, optimize)      {_fmt(encode_ms)}")
        print(f"  label_image_file, end to end        {_fmt(whole_ms)}")
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            size = round(1080 * 0.05 * 1.08 / 0.8)
            drawtext = (
                f"drawtext=fontfile={font_path()}:text=AI生成:fontsize={size}:fontcolor=white:"
                "borderw=3:bordercolor=black:x=w-tw-27:y=h-th-27"
            )
            cmd = [
                ffmpeg,
                "-v",
                "error",
                "-y",
                "-i",
                str(src),
                "-vf",
                drawtext,
                "-q:v",
                "3",
                str(Path(tmp) / "ff.jpg"),
            ]
            ff_ms = _times(lambda: subprocess.run(cmd, check=True), max(3, args.repeat // 3))
            print(f"  peer: ffmpeg -vf drawtext (process) {_fmt(ff_ms)}")
        print("  (machine shared with other jobs: expect noise; compare medians within one run)")


if __name__ == "__main__":
    main()
