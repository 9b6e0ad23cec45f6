"""Benchmark: the invisible watermarks against every attack of issue 4, side by side with imwatermark.

Prints figures, asserts nothing. Run:  .venv/bin/python -m bench.watermark [--quick] [--fp N] [--small 256]

1. Images: the photos of ``../shared/testdata/pdq`` (short side >= 256), each marked with a random
   ProduceID, then attacked (JPEG q50 4:2:0, resize 50%, crop keeping 80% of the area at a random
   offset, brightness and contrast +-20%, Gaussian noise sigma 5, rotation +-2 degrees, scale 0.75
   then JPEG q75; and, marked "+", evasions beyond the issue's list: mirroring, a quarter turn, a 10
   degree rotation, stretching, a crop to half the area, WebP q50). Exact recovery rate per attack,
   PSNR and SSIM, and embed/detect time at 1920x1080, for synthguard and for invisible-watermark
   (``imwatermark``, method dwtDct, the mark Stable Diffusion ships; 64 bits, recovered means all 64
   bits right) in the same run. The peer is skipped with a note when it is not installed (it is not
   a project dependency; ``.venv/bin/pip install --no-deps invisible-watermark PyWavelets
   opencv-python-headless`` installs what dwtDct needs, without torch).
2. False positives: detections on unmarked crops of the photos and on marked images read with a
   wrong key (``--fp``, default 2,000; the issue's figure is 10,000), with the bound the p-value gives.
3. Video: a generated 1080p clip marked, then H.264 CRF 28, scaled to 720p, and a 3 s excerpt;
   detection speed against real time.
4. Audio: run when ``synthguard.watermark.audio`` exists.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance
from tests.watermark.test_audio import music

from synthguard.aigc import ProduceID
from synthguard.watermark.image import detect_image, embed_image

PDQ = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "pdq"
SECRET = b"bench-watermark-secret-key"
OTHER = b"another-watermark-secret-key"
THRESHOLD = 1e-6

Attack = Callable[[Image.Image, np.random.Generator], Image.Image]


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, subsampling=2)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def webp(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "WEBP", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop80(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return crop_area(image, rng, 0.8)


def crop_area(image: Image.Image, rng: np.random.Generator, area: float) -> Image.Image:
    width, height = image.size
    # ``area`` of the area: a random aspect split between the two sides.
    fx = float(rng.uniform(area, 1.0))
    fy = area / fx
    w, h = round(width * fx), round(height * fy)
    x = int(rng.integers(0, width - w + 1))
    y = int(rng.integers(0, height - h + 1))
    return image.crop((x, y, x + w, y + h))


def noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noisy = pixels + rng.normal(0.0, 5.0, pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def scaled(image: Image.Image, factor: float) -> Image.Image:
    width, height = image.size
    return image.resize((round(width * factor), round(height * factor)), Image.Resampling.BICUBIC)


ATTACKS: dict[str, Attack] = {
    "none": lambda im, rng: im,
    "jpeg q50 4:2:0": lambda im, rng: jpeg(im, 50),
    "resize 50%": lambda im, rng: scaled(im, 0.5),
    "crop 80% area": crop80,
    "brightness +20%": lambda im, rng: ImageEnhance.Brightness(im).enhance(1.2),
    "brightness -20%": lambda im, rng: ImageEnhance.Brightness(im).enhance(0.8),
    "contrast +20%": lambda im, rng: ImageEnhance.Contrast(im).enhance(1.2),
    "contrast -20%": lambda im, rng: ImageEnhance.Contrast(im).enhance(0.8),
    "noise sigma 5": noise,
    "rotate +2 deg": lambda im, rng: im.rotate(2, resample=Image.Resampling.BICUBIC),
    "rotate -2 deg": lambda im, rng: im.rotate(-2, resample=Image.Resampling.BICUBIC),
    "scale 0.75 + jpeg 75": lambda im, rng: jpeg(scaled(im, 0.75), 75),
    # Beyond the list: what re-uploads and evasions also do.
    "+ mirrored + jpeg 75": lambda im, rng: jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 75),
    "+ turned 90": lambda im, rng: im.transpose(Image.Transpose.ROTATE_90),
    "+ rotate 10 deg": lambda im, rng: im.rotate(10, resample=Image.Resampling.BICUBIC),
    "+ stretch 100x80": lambda im, rng: im.resize((im.size[0], round(im.size[1] * 0.8))),
    "+ crop 50% area": lambda im, rng: crop_area(im, rng, 0.5),
    "+ webp q50": lambda im, rng: webp(im, 50),
}


def photos() -> list[tuple[str, Image.Image]]:
    found: list[tuple[str, Image.Image]] = []
    for path in sorted(PDQ.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".png", ".webp"):
            continue
        with Image.open(path) as image:
            if min(image.size) < 256:
                continue
            if image.mode == "1":
                print(f"note: {path.name} skipped: a bilevel image has no grey levels to hide a mark in")
                continue
            found.append((str(path.relative_to(PDQ)), image.convert("RGB")))
    return found


def square(image: Image.Image, side: int) -> Image.Image:
    """The centre square of ``image`` resized to ``side`` x ``side``."""
    width, height = image.size
    short = min(width, height)
    x, y = (width - short) // 2, (height - short) // 2
    return image.crop((x, y, x + short, y + short)).resize((side, side), Image.Resampling.LANCZOS)


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _gauss_filter(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    radius = 5
    xs = np.arange(-radius, radius + 1)
    kernel = np.exp(-(xs**2) / (2 * 1.5**2))
    kernel /= kernel.sum()
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, a)
    out: npt.NDArray[np.float64] = np.apply_along_axis(
        lambda c: np.convolve(c, kernel, mode="valid"), 0, rows
    )
    return out


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM of the luminance (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03)."""
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _gauss_filter(x), _gauss_filter(y)
    sxx = _gauss_filter(x * x) - mx * mx
    syy = _gauss_filter(y * y) - my * my
    sxy = _gauss_filter(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(value.mean())


def random_id(rng: np.random.Generator) -> str:
    return ProduceID.from_int(int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)))


class Scheme:
    name = ""

    def embed(self, image: Image.Image, produce_id: str) -> Image.Image:
        raise NotImplementedError

    def recovered(self, image: Image.Image, produce_id: str) -> bool:
        raise NotImplementedError


class Ours(Scheme):
    name = "synthguard"

    def embed(self, image: Image.Image, produce_id: str) -> Image.Image:
        return embed_image(image, produce_id, SECRET)

    def recovered(self, image: Image.Image, produce_id: str) -> bool:
        detection = detect_image(image, SECRET, THRESHOLD)
        return detection.found and detection.produce_id == produce_id


class Peer(Scheme):
    """invisible-watermark's dwtDct with the 64 ProduceID bits."""

    name = "imwatermark dwtDct"

    def __init__(self) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder  # type: ignore[import-untyped]

        self._encoder = WatermarkEncoder
        self._decoder = WatermarkDecoder

    @staticmethod
    def _bits(produce_id: str) -> list[int]:
        value = ProduceID.to_int(produce_id)
        return [(value >> (63 - i)) & 1 for i in range(64)]

    def embed(self, image: Image.Image, produce_id: str) -> Image.Image:
        encoder = self._encoder()
        encoder.set_watermark("bits", self._bits(produce_id))
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        out = encoder.encode(bgr, "dwtDct")
        return Image.fromarray(np.ascontiguousarray(out[:, :, ::-1]))

    def recovered(self, image: Image.Image, produce_id: str) -> bool:
        decoder = self._decoder("bits", 64)
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        try:
            bits = [int(b) for b in decoder.decode(bgr, "dwtDct")]
        except RuntimeError:  # "image too small": not recovered
            return False
        return bits == self._bits(produce_id)


def peer() -> Scheme | None:
    if importlib.util.find_spec("imwatermark") is None:
        print("note: imwatermark is not installed; the peer's columns are skipped")
        return None
    try:
        return Peer()
    except ImportError as exc:
        print(f"note: imwatermark does not import ({exc}); the peer's columns are skipped")
        return None


def bench_images(schemes: list[Scheme], images: list[tuple[str, Image.Image]], seed: int) -> None:
    print(f"\n1. Images: {len(images)} photos from {PDQ}, threshold p < {THRESHOLD:g}")
    wins: dict[str, dict[str, int]] = {s.name: dict.fromkeys(ATTACKS, 0) for s in schemes}
    quality: dict[str, tuple[list[float], list[float]]] = {s.name: ([], []) for s in schemes}
    for index, (_, image) in enumerate(images):
        rng = np.random.default_rng(seed + index)
        produce_id = random_id(rng)
        for scheme in schemes:
            marked = scheme.embed(image, produce_id)
            quality[scheme.name][0].append(psnr(image, marked))
            quality[scheme.name][1].append(ssim(image, marked))
            for name, attack in ATTACKS.items():
                attacked = attack(marked, np.random.default_rng(seed * 7 + index))
                wins[scheme.name][name] += scheme.recovered(attacked, produce_id)
    header = f"   {'attack':<22}" + "".join(f"{s.name:>22}" for s in schemes)
    print(header)
    for name in ATTACKS:
        row = "".join(f"{100 * wins[s.name][name] / len(images):>21.1f}%" for s in schemes)
        print(f"   {name:<22}{row}")
    for label, which in (("PSNR dB (min / mean)", 0), ("SSIM (min / mean)", 1)):
        row = "".join(
            f"{min(quality[s.name][which]):>13.4f} / {statistics.mean(quality[s.name][which]):.3f}"
            for s in schemes
        )
        print(f"   {label:<22}{row}")


def bench_speed(schemes: list[Scheme], image: Image.Image, repeat: int) -> None:
    frame = image.resize((1920, 1080), Image.Resampling.BICUBIC)
    print(f"\n   speed at 1920x1080 (median of {repeat} runs; wall clock, and CPU time of this process)")
    for scheme in schemes:
        times: dict[str, list[float]] = {
            "embed": [],
            "detect": [],
            "detect unmarked": [],
            "embed cpu": [],
            "detect cpu": [],
        }
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            marked = scheme.embed(frame, "0123456789ABCDEF")
            times["embed"].append(time.perf_counter() - wall)
            times["embed cpu"].append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            scheme.recovered(marked, "0123456789ABCDEF")
            times["detect"].append(time.perf_counter() - wall)
            times["detect cpu"].append(time.process_time() - cpu)
            wall = time.perf_counter()
            scheme.recovered(frame, "0123456789ABCDEF")  # nothing to find: every candidate is tried
            times["detect unmarked"].append(time.perf_counter() - wall)
        figures = "   ".join(f"{name} {1000 * statistics.median(v):7.1f} ms" for name, v in times.items())
        print(f"   {scheme.name:<22} {figures}")


def bench_false_positives(images: list[tuple[str, Image.Image]], count: int, seed: int) -> None:
    print(f"\n2. False positives: {count:,} detections on unmarked crops and on wrong-key images")
    rng = np.random.default_rng(seed)
    found = 0
    smallest = 1.0
    wrong_key = [embed_image(im, random_id(rng), OTHER) for _, im in images[:4]]
    start = time.perf_counter()
    for i in range(count):
        if i % 10 == 9:
            source = wrong_key[i % len(wrong_key)]
        else:
            source = images[int(rng.integers(0, len(images)))][1]
        width, height = source.size
        side = int(rng.integers(256, min(width, height) + 1))
        w = min(width, int(side * rng.uniform(1.0, 1.6)))
        x = int(rng.integers(0, width - w + 1))
        y = int(rng.integers(0, height - side + 1))
        crop = source.crop((x, y, x + w, y + side))
        if i % 3 == 0:
            crop = scaled(crop, float(rng.uniform(0.5, 1.0)))
        detection = detect_image(crop, SECRET, THRESHOLD)
        found += detection.found
        smallest = min(smallest, detection.p_value)
    elapsed = time.perf_counter() - start
    print(f"   found {found} of {count:,} (expected under the bound: at most {count * THRESHOLD:.4f})")
    print(f"   smallest p-value seen {smallest:.3g}; {1000 * elapsed / count:.1f} ms per detection")


def make_clip(path: Path, photo: Image.Image, seconds: float) -> None:
    """A 1080p30 H.264 (CRF 18) clip panning and zooming over ``photo``, with AAC music (the tests')."""
    import av

    width, height = 1920, 1080
    big = photo.resize((int(width * 1.5), int(height * 1.5)), Image.Resampling.BICUBIC)
    frames = round(seconds * 30)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "18", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(frames):
            zoom = 1.0 + 0.3 * i / max(1, frames - 1)
            w, h = round(width * zoom), round(height * zoom)
            x = round((big.size[0] - w) * i / max(1, frames - 1))
            y = round((big.size[1] - h) * (0.5 + 0.4 * math.sin(i / 20)))
            view = big.crop((x, y, x + w, y + h)).resize((width, height), Image.Resampling.BILINEAR)
            for packet in video.encode(av.VideoFrame.from_image(view)):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        soundtrack = music(48000, seconds, seed=int(photo.size[0]))
        for start in range(0, soundtrack.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(soundtrack[:, start : start + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate = 48000
            frame.pts = start
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


def y_psnr(a: Path, b: Path, frames: int = 10) -> float:
    import av

    errors: list[float] = []
    with av.open(str(a)) as first, av.open(str(b)) as second:
        for fa, fb in zip(first.decode(video=0), second.decode(video=0), strict=False):
            ya = fa.to_ndarray()[: fa.height].astype(np.float64)
            yb = fb.to_ndarray()[: fb.height].astype(np.float64)
            errors.append(float(np.mean((ya - yb) ** 2)))
            if len(errors) == frames:
                break
    return 10 * math.log10(255.0**2 / statistics.mean(errors))


def bench_video(quick: bool, seed: int) -> None:
    print("\n3. Video (1080p30 clips panning over the photos, marked, then attacked with ffmpeg)")
    if importlib.util.find_spec("synthguard.watermark.video") is None:
        print("   video: not built")
        return
    import shutil
    import subprocess

    from synthguard.config import Settings
    from synthguard.watermark.video import detect_video_file, embed_video_file

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("   video: ffmpeg is not installed; skipped")
        return
    settings = Settings(watermark_key=SECRET.decode())
    sources = [PDQ / "bridge-mods" / "aaa-orig.jpg", PDQ / "misc-images" / "c.png"]
    if not quick:
        sources.append(PDQ / "bridge-mods" / "high-contrast.jpg")
    seconds = 4.0 if quick else 8.0
    rng = np.random.default_rng(seed)
    attacks = {
        "none": [],
        "h264 crf 28": ["-c:v", "libx264", "-crf", "28", "-preset", "medium"],
        "scale to 720p": ["-vf", "scale=-2:720", "-c:v", "libx264", "-crf", "23"],
        "3 s excerpt": ["-c:v", "libx264", "-crf", "23"],
    }
    wins = dict.fromkeys(attacks, 0)
    detect_speed: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for n, source in enumerate(sources):
            with Image.open(source) as photo:
                clip = Path(folder) / f"clip{n}.mp4"
                make_clip(clip, photo.convert("RGB"), seconds)
            produce_id = random_id(rng)
            marked = Path(folder) / f"marked{n}.mp4"
            start = time.process_time()
            embed_video_file(clip, marked, produce_id, settings)
            embed_cpu = time.process_time() - start
            print(
                f"   clip {n}: {seconds:.0f} s, embed {embed_cpu:.1f} s CPU, "
                f"Y-PSNR marked vs source {y_psnr(clip, marked):.2f} dB"
            )
            for name, args in attacks.items():
                target = marked
                if args:
                    target = Path(folder) / f"attacked{n}.mp4"
                    head = (
                        ["-ss", f"{rng.uniform(0, seconds - 3):.2f}", "-t", "3"] if "excerpt" in name else []
                    )
                    command = [
                        ffmpeg,
                        "-v",
                        "error",
                        "-y",
                        *head,
                        "-i",
                        str(marked),
                        *args,
                        "-an",
                        str(target),
                    ]
                    subprocess.run(command, check=True)
                start = time.perf_counter()
                cpu = time.process_time()
                detection = detect_video_file(target, settings)
                cpu = time.process_time() - cpu
                duration = 3.0 if "excerpt" in name else seconds
                detect_speed.append(duration / max(cpu, 1e-9))
                wins[name] += detection.found and detection.produce_id == produce_id
            unmarked = detect_video_file(clip, settings)
            print(f"   clip {n}: unmarked found={unmarked.found} p={unmarked.p_value:.3g}")
            audio_file = _audio_detector()
            if audio_file is not None:
                heard = audio_file(marked, settings)
                carried = heard.produce_id == produce_id
                print(f"   clip {n}: its AAC soundtrack carries the audio mark: {carried}")
    for name in attacks:
        print(f"   {name:<22}{100 * wins[name] / len(sources):>21.1f}%")
    print(
        f"   detection speed: {min(detect_speed):.1f}x to {max(detect_speed):.1f}x real time "
        "(video seconds per CPU second, decoding included)"
    )


def _audio_detector() -> Callable[..., Any] | None:
    if importlib.util.find_spec("synthguard.watermark.audio") is None:
        return None
    found = getattr(importlib.import_module("synthguard.watermark.audio"), "detect_audio_file", None)
    return found if callable(found) else None


def bench_audio() -> None:
    print("\n4. Audio")
    if importlib.util.find_spec("synthguard.watermark.audio") is None:
        print("   audio: see bench section")
    else:
        print("   audio: see bench section: .venv/bin/python -m bench.watermark_audio (audio and text)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer photos and runs")
    parser.add_argument("--fp", type=int, default=2000, help="false-positive detections (issue: 10000)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--small", type=int, default=0, help="also run the image table on the photos cut square at N px"
    )
    parser.add_argument(
        "--sections", default="images,fp,video,audio", help="comma-separated: images, fp, video, audio"
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    print("note: wall-clock figures are noisy when the machine is shared")
    images = photos()
    if args.quick:
        images = images[::4]
    schemes: list[Scheme] = [Ours()]
    other = peer()
    if other is not None:
        schemes.append(other)
    if "images" in sections:
        bench_images(schemes, images, args.seed)
        if args.small:
            print(f"\n   the same photos, centre cut square and resized to {args.small} x {args.small}:")
            bench_images(schemes, [(name, square(image, args.small)) for name, image in images], args.seed)
        bench_speed(schemes, images[0][1], 3 if args.quick else 9)
    if "fp" in sections:
        bench_false_positives(images, args.fp // 10 if args.quick else args.fp, args.seed)
    if "video" in sections:
        bench_video(args.quick, args.seed)
    if "audio" in sections:
        bench_audio()


if __name__ == "__main__":
    main()
