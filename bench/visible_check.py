"""Benchmark: the explicit-label checker on 1080p images (OCR), in images per second.

Prints figures, asserts nothing. Run:  .venv/bin/python -m bench.visible_check [--images N]

Side by side on the same 1920x1080 JPEGs (half with a label drawn in another font, half without):

- ``check_file`` as shipped: JPEG decoded at reduced size (DCT scaling), one OCR pass on the
  picture scaled to 960 px;
- ``check_file(thorough=True)``: full decode, plus the four edge bands at full resolution;
- the peer: RapidOCR used as its documentation shows (``RapidOCR()(path)``: its own decode, angle
  classifier, its default resizing), followed by the same wording rules.

Each row also says how many labels it found (of the labeled half) and how many it claimed on the
unlabeled half. The engine's one-time load is measured apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from synthguard.visible import ocr
from synthguard.visible.checker import check_file
from synthguard.visible.wording import find_label_phrases

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "pdq"
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def _images(folder: Path, count: int) -> list[tuple[Path, bool]]:
    sources = sorted((PHOTOS / "bridge-mods").glob("*.jpg")) + sorted((PHOTOS / "dih").glob("*.jpg"))
    font = ImageFont.truetype(FONT, 70) if Path(FONT).exists() else ImageFont.load_default(70)
    made = []
    for i in range(count):
        image = Image.open(sources[i % len(sources)]).convert("RGB").resize((1920, 1080))
        labeled = i % 2 == 0
        if labeled:
            draw = ImageDraw.Draw(image)
            text = ("AI生成", "人工智能生成", "由AI生成")[i % 3]
            box = draw.textbbox((0, 0), text, font=font, stroke_width=2)
            x = 1920 - (box[2] - box[0]) - 30 if i % 4 == 0 else 30
            draw.text((x, 1080 - 110), text, font=font, fill="white", stroke_width=2, stroke_fill="black")
        path = folder / f"img{i:03d}.jpg"
        image.save(path, quality=90)
        made.append((path, labeled))
    return made


def _peer() -> Callable[[Path], bool]:
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def run(path: Path) -> bool:
        result, _ = engine(str(path))
        return any(find_label_phrases(str(line[1])) for line in result or [])

    return run


def _measure(name: str, fn: Callable[[Path], bool], images: list[tuple[Path, bool]]) -> None:
    times, hits, false = [], 0, 0
    for path, labeled in images:
        start = time.perf_counter()
        found = fn(path)
        times.append(time.perf_counter() - start)
        hits += found and labeled
        false += found and not labeled
    total = sum(times)
    labeled_count = sum(1 for _, labeled in images if labeled)
    print(
        f"{name:<34} {len(images) / total:6.2f} images/s   median {statistics.median(times) * 1000:7.0f} ms"
        f"   found {hits}/{labeled_count}   claimed on unlabeled {false}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="number of 1080p images (default 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        images = _images(Path(folder), max(2, args.images))
        start = time.perf_counter()
        ocr.engine()
        print(f"engine load (once per process): {(time.perf_counter() - start) * 1000:.0f} ms")
        peer = _peer()
        peer(images[0][0])  # warm-up, as for ours above
        print(f"{len(images)} JPEGs of 1920x1080, CPU threads available: {os.cpu_count()}")
        _measure("check_file (shipped)", lambda p: check_file(p).found, images)
        _measure("check_file(thorough=True)", lambda p: check_file(p, thorough=True).found, images)
        _measure("peer: RapidOCR()(path) + wording", peer, images)


if __name__ == "__main__":
    main()
