"""RFC 9162 Merkle tree hashing, proof construction and proof verification (standard library only).

Hand-written rather than taken from a library: the algorithms are short and exactly specified
(RFC 9162 §2.1), the Python packages that implement them are unmaintained or tied to a particular
log's storage, and this module must run, unchanged and with nothing but the standard library, inside
an export bundle on an inspector's machine (``audit export`` copies it there). It is checked against
the transparency-dev/merkle test vectors (``tests/audit/test_merkle.py``).

Definitions (RFC 9162 §2.1.1): ``leaf_hash(d) = SHA-256(0x00 || d)``,
``node_hash(l, r) = SHA-256(0x01 || l || r)``; the hash of an empty tree is ``SHA-256("")``; a tree of
``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``.

Storage model used by the proof BUILDERS: a "complete subtree" ``(level, index)`` covers the leaves
``[index * 2**level, (index + 1) * 2**level)``. Every range that occurs in a proof is aligned and can be
cut, largest first, into at most ``log2(n)`` complete subtrees (``range_nodes``); its hash is their
right fold (``fold``). So a proof for any tree size needs only O(log n) stored complete-subtree hashes,
which the caller fetches in one query: ``inclusion_plan`` / ``consistency_plan`` say which.

The VERIFIERS (``verify_inclusion``, ``verify_consistency``) are RFC 9162 §2.1.3.2 and §2.1.4.2; they
return ``False`` for any proof that does not prove what is claimed, never raise on bad input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Range",
    "consistency_plan",
    "consistency_ranges",
    "fold",
    "frontier_append",
    "inclusion_plan",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "proof_from_nodes",
    "range_nodes",
    "root_from_frontier",
    "root_from_leaf_hashes",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

#: Bytes in a SHA-256 digest.
HASH_SIZE = 32
#: The root hash of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A half-open range of leaf indexes ``(start, end)``.
Range = tuple[int, int]
#: A complete subtree ``(level, index)``.
Node = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of a leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The root of the tree whose leaf hashes are ``hashes`` (O(n) time, O(log n) memory)."""
    frontier: list[bytes] = []
    for index, value in enumerate(hashes):
        frontier = frontier_append(frontier, index, value)[0]
    return root_from_frontier(frontier)


def frontier_append(
    frontier: Sequence[bytes], index: int, value: bytes
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append leaf hash ``value`` as leaf ``index`` to the compact frontier of a tree of ``index`` leaves.

    ``frontier`` holds the roots of the complete subtrees of the tree (one per set bit of its size,
    largest first). Returns the new frontier and the complete subtrees ``(level, index, hash)`` that
    the append completed (the leaf itself first).
    """
    if len(frontier) != index.bit_count():
        raise ValueError(f"a frontier of {len(frontier)} hashes cannot belong to a tree of {index} leaves")
    stack = list(frontier)
    completed = [(0, index, value)]
    level, position, current = 0, index, value
    while position & 1:
        current = node_hash(stack.pop(), current)
        level, position = level + 1, position >> 1
        completed.append((level, position, current))
    stack.append(current)
    return stack, completed


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree from its frontier (largest complete subtree first)."""
    if not frontier:
        return EMPTY_ROOT
    return fold(frontier)


def fold(hashes: Sequence[bytes]) -> bytes:
    """The right fold ``h0 . (h1 . (... . hk))`` of complete-subtree hashes, largest first."""
    if not hashes:
        raise ValueError("nothing to fold")
    current = hashes[-1]
    for value in reversed(hashes[:-1]):
        current = node_hash(value, current)
    return current


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees, largest first, whose fold is the hash of leaves ``[start, end)``.

    ``start`` must be aligned to a power of two at least ``end - start`` (as every range in an RFC 9162
    tree is): the pieces are the set bits of the length, largest first.
    """
    length = end - start
    if length <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    if start & ((1 << (length - 1).bit_length()) - 1):
        raise ValueError(f"range [{start}, {end}) is not aligned")
    nodes: list[Node] = []
    position = start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose hashes make the inclusion proof of leaf ``index`` in a tree of ``size``.

    RFC 9162 §2.1.3.1 ``PATH(m, D[n])``, deepest first.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The leaf ranges whose hashes make the consistency proof from ``size1`` to ``size2``.

    RFC 9162 §2.1.4.1 ``PROOF(m, D[n])``; empty when ``size1`` is 0 or equals ``size2``.
    """
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []
    ranges: list[Range] = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _plan(ranges: Iterable[Range]) -> list[list[Node]]:
    return [range_nodes(start, end) for start, end in ranges]


def inclusion_plan(index: int, size: int) -> list[list[Node]]:
    """For each hash of the inclusion proof, the complete subtrees to fetch and fold."""
    return _plan(inclusion_ranges(index, size))


def consistency_plan(size1: int, size2: int) -> list[list[Node]]:
    """For each hash of the consistency proof, the complete subtrees to fetch and fold."""
    return _plan(consistency_ranges(size1, size2))


def proof_from_nodes(
    plan: Sequence[Sequence[Node]], nodes: Mapping[Node, bytes] | Callable[[Node], bytes]
) -> list[bytes]:
    """The proof hashes of ``plan`` from the complete-subtree hashes in ``nodes`` (a mapping or getter)."""
    get = nodes.__getitem__ if isinstance(nodes, Mapping) else nodes
    return [fold([get(node) for node in pieces]) for pieces in plan]


def _valid_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` proves that ``leaf`` (a leaf HASH) is leaf ``index`` of the tree ``(size, root)``.

    RFC 9162 §2.1.3.2.
    """
    if not (_valid_hash(leaf) and _valid_hash(root) and all(_valid_hash(p) for p in proof)):
        return False
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for value in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(value, result)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, value)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` proves that the tree ``(size1, root1)`` is a prefix of ``(size2, root2)``.

    RFC 9162 §2.1.4.2, with transparency-dev/merkle's edge cases: equal sizes need equal roots and an
    empty proof; size 0 is refused (the empty tree is a prefix of every tree: there is nothing to
    prove, and a caller that asks has a bug).
    """
    if not 0 < size1 <= size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not (_valid_hash(root1) and _valid_hash(root2) and all(_valid_hash(p) for p in proof)):
        return False
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = path[0]
    for value in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first = node_hash(value, first)
            second = node_hash(value, second)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, value)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first == root1 and second == root2
