"""Benchmark: PDQ image review, the hash index over a million hashes and hashing throughput.

Prints figures, asserts nothing. Run:  .venv/bin/python bench/review_pdq.py [--quick]

1. Index of 1,000,000 random hashes (``--quick``: 200,000): build time (bulk and from ``PdqHash``
   objects), memory (arrays, entry ids, process RSS growth), and query time p50/p99 for one hash and
   for the eight dihedral hashes of an image, with neighbours planted at distance 31 in the layout
   that is hardest for multi-index hashing (all found: the search is exact). Side by side, the
   alternatives measured before choosing: a numpy brute force and faiss ``IndexBinaryFlat`` (if
   installed).
2. Hashing 20 generated 1080p JPEGs (``--quick``: 5): decode (with the reduction to 512 px) and hash
   time per image, against a full-resolution decode and hash.
3. Video: a 10 s 1080p H.264 clip (``--quick``: 4 s) sampled once a second.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pdqhash  # type: ignore[import-untyped]
from PIL import Image

from synthguard.review.hash_index import HashIndex
from synthguard.review.images import (
    PdqHash,
    dihedral_hashes_of_pixels,
    hash_pixels,
    load_pixels,
)
from synthguard.review.video import hash_video_frames


def rss_bytes() -> int:
    with Path("/proc/self/status").open() as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentiles(seconds: Sequence[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.3f} ms   p99 {p99:7.3f} ms   (n={len(ms)})"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def spread_flip(value: bytes, distance: int, rng: random.Random) -> bytes:
    """``value`` with ``distance`` bits flipped, spread evenly over the 16 substrings of 16 bits."""
    number = int.from_bytes(value, "big")
    counts = [distance // 16 + (1 if k < distance % 16 else 0) for k in range(16)]
    rng.shuffle(counts)
    for substring, count in enumerate(counts):
        for bit in rng.sample(range(16), count):
            number ^= 1 << (substring * 16 + bit)
    return number.to_bytes(32, "big")


# -- 1. the index ----------------------------------------------------------------------------------


def bench_index(count: int, queries: int) -> None:
    print(f"\n1. Index of {count:,} random hashes")
    rng = np.random.default_rng(1)
    prng = random.Random(1)
    hashes = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    ids = [f"entry-{i:07d}" for i in range(count)]
    ids_bytes = sys.getsizeof(ids) + sum(sys.getsizeof(s) for s in ids)

    before = rss_bytes()
    start = time.perf_counter()
    index = HashIndex.from_array(ids, hashes)
    bulk_seconds = time.perf_counter() - start
    grown = rss_bytes() - before
    objects = [(entry_id, PdqHash(row.tobytes(), 100)) for entry_id, row in zip(ids, hashes, strict=True)]
    start = time.perf_counter()
    HashIndex.build(objects)
    from_objects = time.perf_counter() - start
    del objects
    print(f"   build, bulk (from_array)         {bulk_seconds:8.2f} s")
    print(f"   build, from (id, PdqHash) pairs  {from_objects:8.2f} s")
    print(f"   memory: arrays {index.nbytes / 2**20:.0f} MiB, entry ids {ids_bytes / 2**20:.0f} MiB (shared")
    print(f"           with the caller), process RSS growth during build {grown / 2**20:.0f} MiB")

    # Queries: each has a planted neighbour at distance 31 (hardest layout) and 7 random companions.
    planted = [prng.randrange(count) for _ in range(queries)]
    singles = [PdqHash(spread_flip(hashes[row].tobytes(), 31, prng), 100) for row in planted]
    octets = [[q] + [PdqHash(prng.randbytes(32), 100) for _ in range(7)] for q in singles]
    found = 0
    single_times: list[float] = []
    for row, query in zip(planted, singles, strict=True):
        start = time.perf_counter()
        result = index.query(query)
        single_times.append(time.perf_counter() - start)
        found += any(m.entry_id == ids[row] for m in result.matches)
    octet_times: list[float] = []
    for octet in octets:
        start = time.perf_counter()
        index.query(octet)
        octet_times.append(time.perf_counter() - start)
    random_times = [timed(lambda: index.query(PdqHash(prng.randbytes(32), 100))) for _ in range(queries)]
    print(f"   query, 1 hash, d <= 31           {percentiles(single_times)}")
    print(f"   query, 1 random hash (no match)  {percentiles(random_times)}")
    print(f"   query, 8 dihedral hashes         {percentiles(octet_times)}")
    print(f"   planted neighbours at distance 31 found: {found} of {queries}")

    words = hashes.view(np.uint64)
    sample = singles[: min(20, queries)]

    def numpy_brute(query: PdqHash) -> npt.NDArray[np.intp]:
        q = np.frombuffer(query.value, dtype=np.uint64)
        distances = np.bitwise_count(words ^ q).sum(axis=1, dtype=np.uint16)
        return np.flatnonzero(distances <= 31)

    brute = [timed(lambda q=q: numpy_brute(q)) for q in sample]
    print(f"   alternative: numpy brute force {percentiles(brute)}")
    try:
        import faiss  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        print("   alternative: faiss not installed")
        return
    faiss.omp_set_num_threads(1)
    flat = faiss.IndexBinaryFlat(256)
    flat.add(hashes)
    one = [
        timed(lambda q=q: flat.range_search(np.frombuffer(q.value, np.uint8)[None, :], 32)) for q in sample
    ]
    eight = [
        timed(
            lambda o=o: flat.range_search(
                np.frombuffer(b"".join(h.value for h in o), np.uint8).reshape(8, 32), 32
            )
        )
        for o in octets[: len(sample)]
    ]
    print(f"   alternative: faiss flat, 1 hash   {percentiles(one)}")
    print(f"   alternative: faiss flat, 8 hashes {percentiles(eight)}")


# -- 2. hashing throughput -------------------------------------------------------------------------


def photo_like(rng: np.random.Generator, width: int = 1920, height: int = 1080) -> npt.NDArray[np.uint8]:
    """Smooth gradients, a few shapes and sensor-like noise: decodes and hashes like a photo."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), dtype=np.float32)
    for channel in range(3):
        fx, fy, phase = [*rng.uniform(0.5, 4, 2).tolist(), rng.uniform(0, 6.3)]
        image[:, :, channel] = 128 + 80 * np.sin(x / width * fx * 6.3 + phase) * np.cos(y / height * fy * 6.3)
    for _ in range(12):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(40, 300)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        image[mask] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def bench_hashing(count: int) -> None:
    print(f"\n2. Hashing {count} generated 1080p JPEGs (quality 90)")
    rng = np.random.default_rng(2)
    files = []
    for _ in range(count):
        out = io.BytesIO()
        Image.fromarray(photo_like(rng)).save(out, "JPEG", quality=90)
        files.append(out.getvalue())
    load_pixels(files[0]), hash_pixels(load_pixels(files[0]))  # warm up

    decode, hash_one, hash_eight, full_decode, full_hash = [], [], [], [], []
    for data in files:
        start = time.perf_counter()
        pixels = load_pixels(data)
        decode.append(time.perf_counter() - start)
        hash_one.append(timed(lambda p=pixels: hash_pixels(p)))
        hash_eight.append(timed(lambda p=pixels: dihedral_hashes_of_pixels(p)))
        start = time.perf_counter()
        with Image.open(io.BytesIO(data)) as image:
            full = np.asarray(image.convert("RGB"))
        full_decode.append(time.perf_counter() - start)
        full_hash.append(timed(lambda f=full: pdqhash.compute(f)))

    def line(name: str, seconds: list[float]) -> str:
        mean = statistics.fmean(seconds)
        return f"   {name:<40} {mean * 1000:7.2f} ms/image   {1 / mean:7.1f} images/s"

    print(line("decode + reduce to 512 px (load_pixels)", decode))
    print(line("hash (hash_pixels)", hash_one))
    print(line("8 dihedral hashes (one DCT)", hash_eight))
    total = [d + h for d, h in zip(decode, hash_one, strict=True)]
    print(line("total, hash_image", total))
    print(line("total, hash_image + 8 dihedral", [d + h for d, h in zip(decode, hash_eight, strict=True)]))
    print(line("for comparison: full-resolution decode", full_decode))
    print(line("for comparison: full-resolution hash", full_hash))


# -- 3. video --------------------------------------------------------------------------------------


def bench_video(seconds: int) -> None:
    import av

    print(f"\n3. Video: {seconds} s of 1080p H.264 at 25 fps, one hash a second")
    rng = np.random.default_rng(3)
    pictures = [photo_like(rng) for _ in range(4)]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "clip.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
            stream.codec_context.options = {"preset": "ultrafast"}
            for number in range(seconds * 25):
                frame = av.VideoFrame.from_ndarray(pictures[(number // 25) % 4], format="rgb24")
                frame.pts, frame.time_base = number, Fraction(1, 25)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        for every in (1.0, 5.0):
            start = time.perf_counter()
            hashes = hash_video_frames(path, every_seconds=every)
            elapsed = time.perf_counter() - start
            print(
                f"   every {every:3.0f} s: {len(hashes)} hashes in {elapsed:6.2f} s"
                f"  ({seconds / elapsed:5.1f} s of video per second)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller index and fewer files (a smoke run)")
    args = parser.parse_args()
    print(f"CPUs: {os.cpu_count()}  (figures are single-threaded; other load on the machine shows in p99)")
    bench_index(200_000 if args.quick else 1_000_000, 200 if args.quick else 1000)
    bench_hashing(5 if args.quick else 20)
    bench_video(4 if args.quick else 10)


if __name__ == "__main__":
    main()
