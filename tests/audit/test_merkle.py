"""RFC 9162 hashing and proofs, against the transparency-dev/merkle vectors (``../shared``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.audit import merkle
from tests.conftest import SHARED

MERKLE = SHARED / "testdata" / "merkle"


def _cases(kind: str) -> list[Path]:
    return sorted((MERKLE / "testdata" / kind).rglob("*.json"))


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_vectors_are_there() -> None:
    assert len(_cases("inclusion")) > 50 and len(_cases("consistency")) > 50


@pytest.fixture(scope="module")
def reference() -> tuple[list[bytes], list[bytes]]:
    data = _load(MERKLE / "reference-tree.json")
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in data["leaf_inputs_hex"]]
    roots = [bytes.fromhex(h) for h in data["root_by_tree_size_hex"]]
    return leaves, roots


def test_roots_of_every_size_match_the_reference(reference: tuple[list[bytes], list[bytes]]) -> None:
    leaves, roots = reference
    for size, root in enumerate(roots):
        assert merkle.root_from_leaf_hashes(leaves[:size]) == root


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    ok = merkle.verify_inclusion(
        _b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root"]),
    )
    assert ok is (not case["wantErr"]), case["desc"]


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    ok = merkle.verify_consistency(
        case["size1"],
        case["size2"],
        _b64(case["root1"]),
        _b64(case["root2"]),
        [_b64(p) for p in case["proof"] or []],
    )
    assert ok is (not case["wantErr"]), case["desc"]


def _all_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    nodes: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for index, value in enumerate(leaves):
        frontier, done = merkle.frontier_append(frontier, index, value)
        nodes.update({(level, position): h for level, position, h in done})
    return nodes


def test_built_proofs_match_the_vectors_happy_paths(reference: tuple[list[bytes], list[bytes]]) -> None:
    leaves, _ = reference
    nodes = _all_nodes(leaves)
    for path in _cases("inclusion"):
        case = _load(path)
        if (
            not case["wantErr"]
            and case["treeSize"] <= len(leaves)
            and case["leafHash"] == base64.b64encode(leaves[case["leafIdx"]]).decode()
        ):
            built = merkle.proof_from_nodes(merkle.inclusion_plan(case["leafIdx"], case["treeSize"]), nodes)
            assert built == [_b64(p) for p in case["proof"] or []], path
    for path in _cases("consistency"):
        case = _load(path)
        if not case["wantErr"] and case["size2"] <= len(leaves) and case["size1"] > 0:
            built = merkle.proof_from_nodes(merkle.consistency_plan(case["size1"], case["size2"]), nodes)
            assert built == [_b64(p) for p in case["proof"] or []], path


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=70), data=st.data())
def test_proofs_built_from_stored_nodes_verify_and_fail_when_altered(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    nodes = _all_nodes(leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    assert merkle.fold([nodes[n] for n in merkle.range_nodes(0, size)]) == root
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.proof_from_nodes(merkle.inclusion_plan(index, size), nodes)
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    if size > 1:
        assert not merkle.verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)
        bad = list(proof)
        bad[data.draw(st.integers(0, len(bad) - 1))] = bytes(32)
        assert not merkle.verify_inclusion(leaves[index], index, size, bad, root)
    size1 = data.draw(st.integers(1, size))
    root1 = merkle.root_from_leaf_hashes(leaves[:size1])
    cproof = merkle.proof_from_nodes(merkle.consistency_plan(size1, size), nodes)
    assert merkle.verify_consistency(size1, size, root1, root, cproof)
    if 0 < size1 < size:
        assert not merkle.verify_consistency(size1, size, root1, merkle.leaf_hash(b"x"), cproof)
        assert not merkle.verify_consistency(size1, size, root1, root, cproof[:-1])


def test_range_nodes_refuses_unaligned_and_empty_ranges() -> None:
    assert merkle.range_nodes(8, 13) == [(2, 2), (0, 12)]
    with pytest.raises(ValueError, match="aligned"):
        merkle.range_nodes(3, 7)
    with pytest.raises(ValueError, match="empty"):
        merkle.range_nodes(4, 4)


def test_a_frontier_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="frontier"):
        merkle.frontier_append([], 3, bytes(32))


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
def test_verifiers_refuse_hashes_of_the_wrong_length(bad: bytes) -> None:
    good = merkle.leaf_hash(b"a")
    assert not merkle.verify_inclusion(bad, 0, 1, [], good)
    assert not merkle.verify_inclusion(good, 0, 1, [], bad)
    assert not merkle.verify_consistency(1, 2, good, bad, [good])
    assert not merkle.verify_consistency(1, 2, bad, good, [good])


def test_a_consistency_proof_from_the_empty_tree_is_refused() -> None:
    assert merkle.consistency_ranges(0, 5) == []
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, merkle.leaf_hash(b"a"), [])
