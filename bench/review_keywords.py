"""Benchmark: keyword review with a library of 100,000 keywords, side by side with a bare automaton.

Prints figures, asserts nothing. Run:  .venv/bin/python bench/review_keywords.py [--quick]

1. Build: time to compile 100,000 generated keywords (CJK and Latin terms) into a ``KeywordIndex``,
   the first time (one-time character tables included) and again; process RSS.
2. Scan throughput over a multi-MB generated text with full normalisation, in MB/s of UTF-8 input,
   next to a bare automaton (ahocorasick-rs over the raw terms, no normalisation) on the same text, and
   the ratio of the two; for a library whose entries all use the default normalisations, and for a
   mixed one (some entries with repeat, pinyin, initials, homophone: five automata).
3. Latency of 2,000-character prompts: p50 and p99 of ``scan``, and of the bare automaton.
4. The automaton library, measured on the same normalised patterns and text: ahocorasick-rs over
   dense two-byte character codes (what ``keywords.py`` does), on ``str`` and on UTF-8 ``bytes``,
   and pyahocorasick (build time, scan MB/s): the record of the choice.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.review.evasion, the obfuscation generator

import ahocorasick  # noqa: E402
import ahocorasick_rs  # noqa: E402
import numpy as np  # noqa: E402
from tests.review.evasion import applicable, evade  # noqa: E402

from synthguard.review.keywords import Action, KeywordEntry, KeywordIndex  # noqa: E402
from synthguard.review.normalize import DEFAULT_STEPS, Normalization, normalize_terms  # noqa: E402
from synthguard.review.risks import RiskCategory  # noqa: E402

N = Normalization
CATEGORIES = [c for c in RiskCategory if c.group in ("A1", "A2")]


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def common_chars() -> list[str]:
    """The 3,755 first-level characters of GB 2312 (the most common ones)."""
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def make_library(count: int, rng: random.Random, *, mixed: bool) -> list[KeywordEntry]:
    chars = common_chars()
    terms: set[str] = set()
    entries: list[KeywordEntry] = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(entries) < count:
        k = len(entries)
        if rng.random() < 0.1:
            term = "".join(rng.choices(letters, k=rng.randint(5, 10)))
        else:
            term = "".join(rng.choices(chars, k=rng.choices((2, 3, 4, 5, 6), (5, 35, 35, 15, 10))[0]))
        if term in terms:
            continue
        terms.add(term)
        extra: frozenset[Normalization] = frozenset()
        action = Action.BLOCK if k % 3 else Action.REVIEW
        roll = rng.random()
        if mixed and not term.isascii():
            if roll < 0.02 and all(a != b for a, b in itertools.pairwise(term)):
                extra = frozenset({N.REPEAT})
            elif roll < 0.04 and len(term) >= 3:
                extra = frozenset({N.PINYIN})
            elif roll < 0.05 and len(term) >= 3:
                extra = frozenset({N.INITIALS})
            elif roll < 0.06 and len(term) >= 3:
                extra = frozenset({N.HOMOPHONE})
            elif roll < 0.08:
                term = rng.choice(chars) + term  # a longer, allowed phrase
                if term in terms:
                    continue
                terms.add(term)
                action = Action.ALLOW
        category = CATEGORIES[k % len(CATEGORIES)]
        entries.append(KeywordEntry(f"k{k}", term, category, action, DEFAULT_STEPS | extra))
    return entries


def make_text(size_chars: int, entries: list[KeywordEntry], rng: random.Random) -> str:
    """Prose-like filler: common characters drawn with Zipf frequencies (as in Chinese text, where
    the 1,000 most frequent characters make up about 90%), punctuation, some Latin words and
    numbers, and an evasion of a library keyword about every 2,000 characters."""
    chars = common_chars()
    rng.shuffle(chars)
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(chars))))
    pieces: list[str] = []
    total = 0
    next_evasion = 2000
    punctuation = "，，，。、；：！？"
    while total < size_chars:
        run = "".join(rng.choices(chars, cum_weights=weights, k=rng.randint(6, 24)))
        roll = rng.random()
        if roll < 0.05:
            run += " " + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) + " "
        elif roll < 0.08:
            run += f"{rng.randint(1, 99999)}.{rng.randint(0, 9)}%"
        run += rng.choice(punctuation)
        if total >= next_evasion:
            entry = rng.choice(entries)
            kinds = applicable(entry.term, entry.match)
            if kinds:
                run += evade(entry.term, rng.choice(kinds), rng, entry.match)
            next_evasion += 2000
        pieces.append(run)
        total += len(run)
    return "".join(pieces)[:size_chars]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def row(name: str, *cells: str) -> None:
    print(f"  {name:<52}" + "".join(f"{c:>14}" for c in cells))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_library(name: str, entries: list[KeywordEntry], text: str, prompts: list[str], repeat: int) -> None:
    print(f"\n== {name} library: {len(entries):,} entries ==")
    before, _ = rss_mb()
    start = time.perf_counter()
    index = KeywordIndex.build(entries)
    first = time.perf_counter() - start
    start = time.perf_counter()
    KeywordIndex.build(entries)
    again = time.perf_counter() - start
    after, peak = rss_mb()
    print(f"1. build: first {first:.2f} s (one-time character tables included), again {again:.2f} s;")
    automata = len(index.normalization_sets)
    print(f"   automata: {automata}; RSS {after:.0f} MB (+{after - before:.0f} MB), peak {peak:.0f} MB")

    raw_terms = list(dict.fromkeys(e.term for e in entries))
    bare = ahocorasick_rs.AhoCorasick(raw_terms)
    size_mb = len(text.encode()) / 1e6
    matches = index.scan(text)
    bare_hits = bare.find_matches_as_indexes(text, overlapping=True)
    ours_s = best_of(lambda: index.scan(text), repeat)
    bare_s = best_of(lambda: bare.find_matches_as_indexes(text, overlapping=True), repeat)
    _, peak = rss_mb()
    print(f"2. scan of {size_mb:.1f} MB ({len(text):,} characters): {len(matches):,} matches", end="")
    print(f" (bare: {len(bare_hits):,} hits)")
    row("", "MB/s", "seconds")
    row("synthguard, full normalisation", f"{size_mb / ours_s:.1f}", f"{ours_s:.3f}")
    row("bare ahocorasick-rs, no normalisation", f"{size_mb / bare_s:.1f}", f"{bare_s:.3f}")
    row("ratio (synthguard / bare throughput)", f"{bare_s / ours_s:.2f}", "")
    print(f"   peak RSS after scanning: {peak:.0f} MB")

    ours_t: list[float] = []
    bare_t: list[float] = []
    for prompt in prompts:
        start = time.perf_counter()
        index.scan(prompt)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare.find_matches_as_indexes(prompt, overlapping=True)
        bare_t.append(time.perf_counter() - start)
    print(f"3. {len(prompts):,} prompts of 2,000 characters")
    row("", "p50 ms", "p99 ms", "max ms")
    row("synthguard", *(f"{percentile(ours_t, q) * 1e3:.3f}" for q in (0.5, 0.99, 1.0)))
    row("bare ahocorasick-rs", *(f"{percentile(bare_t, q) * 1e3:.3f}" for q in (0.5, 0.99, 1.0)))


def bench_automata(entries: list[KeywordEntry], text: str, repeat: int) -> None:
    patterns = list(dict.fromkeys(p for p in normalize_terms([e.term for e in entries], DEFAULT_STEPS) if p))
    normalized = normalize_terms([text], DEFAULT_STEPS)[0]
    data = normalized.encode()
    size_mb = len(text.encode()) / 1e6
    print(
        f"\n4. automaton libraries: {len(patterns):,} normalised patterns, {size_mb:.1f} MB of text", end=""
    )
    print(" (normalised; MB/s of the original UTF-8)")
    row("", "build s", "scan MB/s", "hits")

    # What keywords.py does: a dense two-byte code for each character the patterns hold, 0 for
    # every other character, and a bytes automaton over the codes (matches start on even bytes).
    chars = sorted(set("".join(patterns)))
    table = np.zeros(0x110000, dtype=np.uint16)
    table[[ord(c) for c in chars]] = np.arange(1, len(chars) + 1, dtype=np.uint16)

    def encode(s: str) -> bytes:
        return bytes(table[np.frombuffer(s.encode("utf-32-le"), dtype="<u4")].tobytes())

    start = time.perf_counter()
    rs_codes = ahocorasick_rs.BytesAhoCorasick(
        [encode(p) for p in patterns], implementation=ahocorasick_rs.Implementation.ContiguousNFA
    )
    build = time.perf_counter() - start

    def scan_codes() -> int:
        hits = rs_codes.find_matches_as_indexes(encode(normalized), overlapping=True)
        return sum(1 for _, s, _ in hits if s % 2 == 0)

    hits = scan_codes()
    scan = best_of(scan_codes, repeat)
    row(
        "ahocorasick-rs, bytes of 2-byte char codes (used)",
        f"{build:.2f}",
        f"{size_mb / scan:.1f}",
        f"{hits:,}",
    )

    start = time.perf_counter()
    rs_str = ahocorasick_rs.AhoCorasick(patterns)
    build = time.perf_counter() - start
    hits = len(rs_str.find_matches_as_indexes(normalized, overlapping=True))
    scan = best_of(lambda: rs_str.find_matches_as_indexes(normalized, overlapping=True), repeat)
    row("ahocorasick-rs, str", f"{build:.2f}", f"{size_mb / scan:.1f}", f"{hits:,}")

    start = time.perf_counter()
    rs_bytes = ahocorasick_rs.BytesAhoCorasick([p.encode() for p in patterns])
    build = time.perf_counter() - start
    hits = len(rs_bytes.find_matches_as_indexes(data, overlapping=True))
    scan = best_of(lambda: rs_bytes.find_matches_as_indexes(data, overlapping=True), repeat)
    row("ahocorasick-rs, UTF-8 bytes", f"{build:.2f}", f"{size_mb / scan:.1f}", f"{hits:,}")

    start = time.perf_counter()
    automaton = ahocorasick.Automaton()
    for k, pattern in enumerate(patterns):
        automaton.add_word(pattern, k)
    automaton.make_automaton()
    build = time.perf_counter() - start
    hits = sum(1 for _ in automaton.iter(normalized))
    scan = best_of(lambda: sum(1 for _ in automaton.iter(normalized)), repeat)
    row("pyahocorasick, str", f"{build:.2f}", f"{size_mb / scan:.1f}", f"{hits:,}")
    print("   (all overlapping; the encoding of the text is included where it is needed; byte offsets")
    print("   of UTF-8 would still need mapping to characters)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller text and fewer prompts (a smoke run)")
    parser.add_argument("--keywords", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(20240601)
    text_chars = 400_000 if args.quick else 3_000_000
    prompt_count = 300 if args.quick else 2_000
    repeat = 1 if args.quick else 3
    print(f"keyword review benchmark: {args.keywords:,} keywords, {'quick' if args.quick else 'full'} run")
    print(f"start RSS {rss_mb()[0]:.0f} MB")

    mixed = make_library(args.keywords, rng, mixed=True)
    plain = make_library(args.keywords, random.Random(7), mixed=False)
    text = make_text(text_chars, mixed, rng)
    starts = [rng.randrange(0, len(text) - 2000) for _ in range(prompt_count)]
    prompts = [text[s : s + 2000] for s in starts]

    bench_library("default-normalisation", plain, make_text(text_chars, plain, rng), prompts, repeat)
    bench_library("mixed (repeat, pinyin, initials, homophone, allow)", mixed, text, prompts, repeat)
    bench_automata(plain, text, repeat)


if __name__ == "__main__":
    main()
