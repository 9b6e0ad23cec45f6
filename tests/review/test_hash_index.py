"""HashIndex: exact results against a brute force, dihedral search, the quality gate, immutability."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from synthguard.errors import UsageError
from synthguard.review.hash_index import HashIndex, MatchStatus
from synthguard.review.images import Dihedral, ImageReviewConfig, PdqHash, dihedral_hashes, hash_image

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
DIH = sorted((PDQ / "dih").glob("*.jpg"))
BRIDGE = sorted((PDQ / "bridge-mods").glob("*.jpg"))


def random_hash(rng: random.Random, quality: int = 100) -> PdqHash:
    return PdqHash(rng.randbytes(32), quality)


def flip(pdq: PdqHash, bits: list[int]) -> PdqHash:
    value = int(pdq)
    for bit in bits:
        value ^= 1 << bit
    return PdqHash.from_int(value, quality=pdq.quality)


def spread_flips(rng: random.Random, distance: int) -> list[int]:
    """``distance`` bit positions spread as evenly as possible over the 16 substrings of 16 bits:
    the layout that leaves the fewest substrings close to the query (the pigeonhole's worst case)."""
    per_substring = [distance // 16 + (1 if k < distance % 16 else 0) for k in range(16)]
    rng.shuffle(per_substring)
    bits: list[int] = []
    for substring, count in enumerate(per_substring):
        bits.extend(substring * 16 + b for b in rng.sample(range(16), count))
    return bits


def brute_force(entries: list[tuple[str, PdqHash]], queries: list[PdqHash], limit: int) -> dict[str, int]:
    best: dict[str, int] = {}
    for entry_id, pdq in entries:
        distance = min((int(pdq) ^ int(q)).bit_count() for q in queries)
        if distance <= limit and distance < best.get(entry_id, 257):
            best[entry_id] = distance
    return best


@pytest.fixture(scope="module")
def planted() -> tuple[list[tuple[str, PdqHash]], list[PdqHash]]:
    """20,000 random hashes, and around each of 8 query hashes neighbours at distances 0 to 50,
    with their flipped bits in the worst layout for multi-index hashing or in a single substring."""
    rng = random.Random(7)
    entries = [(f"r{i}", random_hash(rng)) for i in range(20_000)]
    queries = [random_hash(rng) for _ in range(8)]
    for q_number, query in enumerate(queries):
        for distance in (0, 1, 2, 15, 16, 17, 30, 31, 32, 33, 40, 47, 48, 50):
            entries.append((f"q{q_number}-spread-{distance}", flip(query, spread_flips(rng, distance))))
            lumped = rng.sample(range(256), distance)
            entries.append((f"q{q_number}-random-{distance}", flip(query, lumped)))
    rng.shuffle(entries)
    return entries, queries


@pytest.mark.parametrize("limit", [0, 1, 15, 16, 31, 32, 47, 48, 60])
def test_exact_against_brute_force(
    planted: tuple[list[tuple[str, PdqHash]], list[PdqHash]], limit: int
) -> None:
    entries, queries = planted
    index = HashIndex.build(entries)
    for query in queries[:3]:
        found = index.query(query, limit)
        assert {m.entry_id: m.distance for m in found.matches} == brute_force(entries, [query], limit)
    # The eight hashes searched together, as for the rotations and flips of one image.
    found = index.query(queries, limit)
    assert {m.entry_id: m.distance for m in found.matches} == brute_force(entries, queries, limit)


def spy_brute_force(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of the brute-force path (to know which path a test exercised)."""
    calls: list[int] = []
    original = HashIndex._search_all

    def counting(self: HashIndex, *args: object) -> object:
        calls.append(1)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HashIndex, "_search_all", counting)
    return calls


def test_worst_case_layout_at_the_threshold_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    entries = [(f"r{i}", random_hash(rng)) for i in range(5_000)]
    query = random_hash(rng)
    for attempt in range(50):
        entries.append((f"far-{attempt}", flip(query, spread_flips(rng, 31))))
    brute_force_calls = spy_brute_force(monkeypatch)
    result = HashIndex.build(entries).query(query)
    assert not brute_force_calls  # found through the tables
    assert {m.entry_id for m in result.matches} >= {f"far-{a}" for a in range(50)}
    assert all(m.distance == 31 for m in result.matches if m.entry_id.startswith("far-"))


def test_brute_force_fallback_when_buckets_are_crowded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of near-identical entries make the candidates outnumber the index: still exact."""
    rng = random.Random(3)
    base = random_hash(rng)
    entries = [(f"near-{i}", flip(base, rng.sample(range(256), i % 40))) for i in range(6_000)]
    entries += [(f"r{i}", random_hash(rng)) for i in range(2_000)]
    brute_force_calls = spy_brute_force(monkeypatch)
    result = HashIndex.build(entries).query(base)
    assert brute_force_calls
    assert {m.entry_id: m.distance for m in result.matches} == brute_force(entries, [base], 31)


def test_results_nearest_first_one_per_entry() -> None:
    rng = random.Random(5)
    query = random_hash(rng)
    entries = [
        ("b", flip(query, [1, 2, 3])),
        ("a", flip(query, [4, 5, 6])),
        ("dup", flip(query, list(range(20)))),
        ("dup", flip(query, [9])),  # an entry with two hashes: its best counts
        ("far", flip(query, list(range(100)))),
    ]
    result = HashIndex.build(entries).query(query)
    assert result.status is MatchStatus.MATCH
    assert [(m.entry_id, m.distance) for m in result.matches] == [("dup", 1), ("a", 3), ("b", 3)]
    assert all(m.variant is Dihedral.ORIGINAL for m in result.matches)


def test_max_distance_from_configuration() -> None:
    rng = random.Random(6)
    query = random_hash(rng)
    entries = [("d10", flip(query, list(range(10)))), ("d25", flip(query, list(range(25))))]
    strict = HashIndex.build(entries, config=ImageReviewConfig(max_distance=12))
    assert [m.entry_id for m in strict.query(query).matches] == ["d10"]
    assert [m.entry_id for m in strict.query(query, 30).matches] == ["d10", "d25"]
    assert [m.entry_id for m in HashIndex.build(entries).query(query).matches] == ["d10", "d25"]


# -- the shared photos -----------------------------------------------------------------------------


def test_any_rotation_or_flip_finds_all_eight() -> None:
    index = HashIndex.build((path.name, hash_image(path)) for path in DIH)
    names = {path.name for path in DIH}
    for path in DIH:
        result = index.query_image(path)
        assert result.status is MatchStatus.MATCH
        assert {m.entry_id for m in result.matches} == names, path.name
        assert all(m.distance <= 31 for m in result.matches)
        itself = next(m for m in result.matches if m.entry_id == path.name)
        assert itself.distance <= 4 and itself.variant is Dihedral.ORIGINAL
        # Without the dihedral search, a rotated copy is not found.
        plain = index.query_image(path, dihedral=False)
        assert {m.entry_id for m in plain.matches} == {path.name}


def test_the_variant_that_matched_is_reported() -> None:
    index = HashIndex.build([("original", hash_image(DIH[0]))])
    undo = {
        "bridge-2-rotate-90.jpg": Dihedral.ROTATE_270,
        "bridge-3-rotate-180.jpg": Dihedral.ROTATE_180,
        "bridge-4-rotate-270.jpg": Dihedral.ROTATE_90,
        "bridge-5-flipx.jpg": Dihedral.FLIP_X,
        "bridge-6-flipy.jpg": Dihedral.FLIP_Y,
        "bridge-7-flip-plus-1.jpg": Dihedral.FLIP_PLUS_1,
        "bridge-8-flip-minus-1.jpg": Dihedral.FLIP_MINUS_1,
    }
    for path in DIH[1:]:
        (match,) = index.query(dihedral_hashes(path)).matches
        assert match.variant is undo[path.name], path.name


def test_every_bridge_edit_finds_the_original() -> None:
    index = HashIndex.build([("bridge", hash_image(PDQ / "bridge-mods" / "aaa-orig.jpg"))])
    for path in BRIDGE:
        assert [m.entry_id for m in index.query_image(path).matches] == ["bridge"], path.name


# -- quality gate ----------------------------------------------------------------------------------


def test_low_quality_entries_are_listed_not_indexed() -> None:
    rng = random.Random(8)
    good, poor = random_hash(rng, 90), random_hash(rng, 30)
    index = HashIndex.build([("good", good), ("poor", poor)])
    assert len(index) == 1 and index.untrusted == ("poor",)
    assert index.query(PdqHash(poor.value, 100)).status is MatchStatus.NO_MATCH
    lenient = HashIndex.build([("good", good), ("poor", poor)], config=ImageReviewConfig(min_quality=0))
    assert len(lenient) == 2 and lenient.untrusted == ()


def test_low_quality_query_is_reported_not_searched() -> None:
    rng = random.Random(9)
    pdq = random_hash(rng, 100)
    index = HashIndex.build([("e", pdq)])
    result = index.query(PdqHash(pdq.value, 10))
    assert result.status is MatchStatus.LOW_QUALITY and result.matches == ()
    flat = index.query_image(PDQ / "misc-images" / "small.jpg")
    assert flat.status is MatchStatus.LOW_QUALITY and flat.query.quality < 50


def test_from_array_matches_build() -> None:
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, 256, (3_000, 32), dtype=np.uint8)
    qualities = rng.integers(0, 101, 3_000)
    ids = [f"e{i}" for i in range(3_000)]
    bulk = HashIndex.from_array(ids, hashes, qualities)
    one_by_one = HashIndex.build(
        (entry_id, PdqHash(row.tobytes(), int(q)))
        for entry_id, row, q in zip(ids, hashes, qualities, strict=True)
    )
    assert len(bulk) == len(one_by_one) and bulk.untrusted == one_by_one.untrusted
    query = PdqHash(hashes[int(np.flatnonzero(qualities >= 50)[0])].tobytes(), 100)
    assert bulk.query(query, 100) == one_by_one.query(query, 100)
    all_trusted = HashIndex.from_array(ids, hashes)
    before = all_trusted.query(query, 100)
    hashes[:] = 0  # the caller's array changes; the index does not
    assert all_trusted.query(query, 100) == before


# -- immutability and arguments --------------------------------------------------------------------


def test_index_is_immutable_and_replaced_not_changed() -> None:
    rng = random.Random(10)
    first, second = random_hash(rng), random_hash(rng)
    old = HashIndex.build([("first", first)])
    new = HashIndex.build([("first", first), ("second", second)])
    assert old.query(second).status is MatchStatus.NO_MATCH  # building another index changed nothing
    assert new.query(second).matches[0].entry_id == "second"
    with pytest.raises(ValueError, match="read-only"):
        old._words[0, 0] = 0
    with pytest.raises(AttributeError):
        old.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(UsageError):
        HashIndex()
    assert old.nbytes > 0


def test_empty_index() -> None:
    index = HashIndex.build([])
    result = index.query(PdqHash(bytes(range(32)), 100))
    assert len(index) == 0 and result.status is MatchStatus.NO_MATCH and result.matches == ()


@pytest.mark.parametrize("limit", [-1, 257, True, 3.5])
def test_invalid_distance(limit: object) -> None:
    index = HashIndex.build([])
    with pytest.raises(UsageError):
        index.query(PdqHash(bytes(32), 100), limit)  # type: ignore[arg-type]


def test_invalid_queries_and_entries() -> None:
    pdq = PdqHash(bytes(32), 100)
    index = HashIndex.build([])
    with pytest.raises(UsageError):
        index.query([pdq, pdq, pdq])
    with pytest.raises(UsageError):
        index.query([])
    with pytest.raises(UsageError):
        HashIndex.build([("e", "00" * 32)])  # type: ignore[list-item]
    with pytest.raises(UsageError):
        HashIndex.from_array(["a"], np.zeros((2, 32), dtype=np.uint8))
    with pytest.raises(UsageError):
        HashIndex.from_array(["a"], np.zeros((1, 16), dtype=np.uint8))
