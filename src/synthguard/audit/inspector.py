"""Verify an audit export bundle without the database (standard library only).

This file is copied into every bundle as ``tools/verify_bundle.py`` (with ``sg_merkle.py``,
``sg_notes.py`` and ``sg_leaves.py`` beside it), so an inspector runs::

    python3 tools/verify_bundle.py BUNDLE_DIR [--public-key KEY.pem] [--json]

and ``synthguard audit verify-bundle`` runs the same code. Checks, in order (docs/audit.md):

1. every file listed in ``manifest.json`` has the SHA-256 the manifest gives;
2. the public key: its C2SP key id is printed; with ``--public-key`` (a key the inspector obtained
   independently of the bundle, e.g. published by the provider) it must be the same key;
3. every checkpoint's Ed25519 signature, under key name = the log's origin;
4. each checkpoint is consistent with the next one (RFC 9162 consistency proofs in the bundle);
5. the records: indexes contiguous from 0 (a complete export), each leaf recomputed from its
   fields, and the root recomputed at every checkpoint size equals the signed root;
6. every inclusion proof in ``proofs.jsonl``: the recomputed leaf of that record is in the tree of
   the latest checkpoint (for a partial export, ``--subject``, this is the only record check).

Exit status: 0 all checks passed, 1 a check failed, 2 the bundle cannot be read.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__:
    from synthguard.audit import leaves, merkle, notes
else:  # run as a script from an export bundle: the copies beside this file (also under python -I)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import sg_leaves as leaves  # type: ignore[import-not-found,no-redef]
    import sg_merkle as merkle  # type: ignore[import-not-found,no-redef]
    import sg_notes as notes  # type: ignore[import-not-found,no-redef]

__all__ = ["BUNDLE_FORMAT", "BundleError", "BundleReport", "main", "public_key_from_pem", "verify_bundle"]

#: ``format`` of a bundle's ``manifest.json``.
BUNDLE_FORMAT = "synthguard-audit-bundle/1"
#: Largest total size a zipped bundle may unpack to.
MAX_UNZIPPED_BYTES = 64 * 1024**3
#: DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw key follows.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class BundleError(Exception):
    """The bundle cannot be read at all (missing manifest, not JSON, wrong format)."""


@dataclass
class BundleReport:
    """What ``verify_bundle`` found: passed checks and failures, in order."""

    origin: str = ""
    key_id: str = ""
    records: int = 0
    complete: bool = True
    checkpoints: int = 0
    latest_checkpoint: int = 0
    proofs: int = 0
    uncovered: int = 0
    passed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        if len(self.failures) < 100:
            self.failures.append(message)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "origin": self.origin,
            "key_id": self.key_id,
            "records": self.records,
            "complete": self.complete,
            "checkpoints": self.checkpoints,
            "latest_checkpoint": self.latest_checkpoint,
            "inclusion_proofs": self.proofs,
            "records_after_latest_checkpoint": self.uncovered,
            "passed": self.passed,
            "failures": self.failures,
        }


def public_key_from_pem(text: str) -> bytes:
    """The raw 32-byte key of an Ed25519 public key in PEM (SubjectPublicKeyInfo); ``BundleError`` if not."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise BundleError("the public key is not a PEM 'PUBLIC KEY'")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except binascii.Error as error:
        raise BundleError(f"the public key's PEM is not base64: {error}") from error
    if len(der) != 44 or not der.startswith(_ED25519_SPKI_PREFIX):
        raise BundleError("the public key is not an Ed25519 key")
    return der[len(_ED25519_SPKI_PREFIX) :]


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(f"{what} is not base64") from error


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path.name} line {number} is not JSON: {error}") from error
            if not isinstance(value, dict):
                raise ValueError(f"{path.name} line {number} is not a JSON object")
            yield number, value


def _record_leaf(record: dict[str, Any]) -> tuple[int, bytes]:
    index = record.get("index")
    fields = [record.get(name) for name in ("time", "event", "actor", "subject", "data")]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"record has a bad index {index!r}")
    if not all(isinstance(value, str) for value in fields):
        raise ValueError(f"record {index} lacks a text field (time, event, actor, subject, data)")
    time, event, actor, subject, data = (str(value) for value in fields)
    return index, merkle.leaf_hash(leaves.leaf_bytes(index, time, event, actor, subject, data))


def _check_manifest(root: Path, manifest: dict[str, Any], report: BundleReport) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        report.fail("manifest.json lists no files")
        return
    for name, digest in sorted(files.items()):
        path = root / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            report.fail(f"manifest names a file outside the bundle: {name}")
            continue
        if not path.is_file():
            report.fail(f"{name} is missing")
            continue
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            report.fail(f"{name} was changed: its SHA-256 is {actual}, the manifest says {digest}")
    if not report.failures:
        report.passed.append(f"{len(files)} files match the manifest's SHA-256 digests")


def _load_checkpoints(
    root: Path, origin: str, key: bytes, report: BundleReport
) -> dict[int, notes.Checkpoint]:
    signed: dict[int, notes.Checkpoint] = {}
    path = root / "checkpoints.jsonl"
    if not path.is_file():
        report.fail("checkpoints.jsonl is missing")
        return signed
    for number, entry in _jsonl(path):
        note = entry.get("note")
        if not isinstance(note, str):
            report.fail(f"checkpoints.jsonl line {number} has no note")
            continue
        try:
            checkpoint = notes.verify_checkpoint(note, origin, key)
        except notes.NoteError as error:
            report.fail(f"checkpoints.jsonl line {number}: {error}")
            continue
        if checkpoint.origin != origin:
            report.fail(
                f"checkpoint of size {checkpoint.size} names origin {checkpoint.origin!r}, not {origin!r}"
            )
            continue
        if checkpoint.size in signed and signed[checkpoint.size].root != checkpoint.root:
            report.fail(
                f"two signed checkpoints of size {checkpoint.size} with different roots: a split view"
            )
        signed[checkpoint.size] = checkpoint
    report.checkpoints = len(signed)
    report.latest_checkpoint = max(signed, default=0)
    if signed and not report.failures:
        report.passed.append(f"{len(signed)} checkpoint signatures are valid (key {report.key_id})")
    return signed


def _check_consistency(root: Path, signed: dict[int, notes.Checkpoint], report: BundleReport) -> None:
    sizes = sorted(signed)
    proofs: dict[tuple[int, int], list[bytes]] = {}
    path = root / "consistency.jsonl"
    if path.is_file():
        for number, entry in _jsonl(path):
            try:
                pair = (int(entry["size1"]), int(entry["size2"]))
                proofs[pair] = [_b64(p, "consistency proof hash") for p in entry["proof"]]
            except (KeyError, TypeError, ValueError, OverflowError) as error:
                report.fail(f"consistency.jsonl line {number} is malformed: {error}")
    failed = False
    for size1, size2 in itertools.pairwise(sizes):
        proof = proofs.get((size1, size2))
        if proof is None:
            report.fail(f"no consistency proof from checkpoint {size1} to checkpoint {size2}")
            failed = True
        elif not merkle.verify_consistency(size1, size2, signed[size1].root, signed[size2].root, proof):
            report.fail(
                f"checkpoint {size2} is NOT consistent with checkpoint {size1}: the log was rewritten"
            )
            failed = True
    if len(sizes) > 1 and not failed:
        report.passed.append(
            f"each of the {len(sizes)} checkpoints extends the one before (consistency proofs)"
        )


def verify_bundle(path: str | Path, *, public_key: bytes | None = None) -> BundleReport:
    """Run the checks of the module docstring on the bundle in directory (or ``.zip`` file) ``path``.

    ``BundleError`` when the bundle cannot be read at all; every failed check is in the report.
    """
    root = Path(path)
    if root.is_file() and zipfile.is_zipfile(root):
        with tempfile.TemporaryDirectory(prefix="sg-bundle-") as unpacked:
            _unzip(root, Path(unpacked))
            return verify_bundle(unpacked, public_key=public_key)
    report = BundleReport()
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"cannot read {root / 'manifest.json'}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{root} is not a {BUNDLE_FORMAT} bundle")
    report.origin = str(manifest.get("origin", ""))
    report.complete = bool(manifest.get("complete", True))
    _check_manifest(root, manifest, report)
    try:
        key = public_key_from_pem((root / "public_key.pem").read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as error:
        raise BundleError(f"cannot read the bundle's public key: {error}") from error
    report.key_id = notes.key_hash(report.origin, key).hex()
    if public_key is not None:
        if public_key != key:
            report.fail("the bundle's public key is NOT the key you gave: do not trust its checkpoints")
            return report
        report.passed.append("the bundle's public key is the key you gave")
    try:
        signed = _load_checkpoints(root, report.origin, key, report)
        _check_consistency(root, signed, report)
        record_leaves = _check_records(root, signed, report)
        _check_proofs(root, signed, record_leaves, report)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        report.fail(str(error))
    return report


def _unzip(archive: Path, into: Path) -> None:
    """Extract a bundle's zip, refusing names that would land outside ``into`` and oversized archives."""
    total = 0
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            name = Path(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise BundleError(f"the archive holds an unsafe name {info.filename!r}")
            total += info.file_size
            if total > MAX_UNZIPPED_BYTES:
                raise BundleError("the archive unpacks to more than the limit")
        bundle.extractall(into)


def _check_records(root: Path, signed: dict[int, notes.Checkpoint], report: BundleReport) -> dict[int, bytes]:
    record_leaves: dict[int, bytes] = {}
    frontier: list[bytes] = []
    expected = 0
    contiguous = report.complete
    before = len(report.failures)
    for number, record in _jsonl(root / "records.jsonl"):
        try:
            index, leaf = _record_leaf(record)
        except ValueError as error:
            report.fail(f"records.jsonl line {number}: {error}")
            contiguous = False
            continue
        record_leaves[index] = leaf
        if not contiguous:
            continue
        if index != expected:
            report.fail(f"records.jsonl line {number}: record {index} where record {expected} was expected")
            contiguous = False
            continue
        frontier, _ = merkle.frontier_append(frontier, index, leaf)
        expected += 1
        checkpoint = signed.get(expected)
        if checkpoint is not None and merkle.root_from_frontier(frontier) != checkpoint.root:
            report.fail(
                f"the records up to {expected} do not hash to the signed root of checkpoint {expected}: "
                "a record was edited, deleted or reordered (the inclusion proofs below name which)"
            )
            contiguous = False
    report.records = len(record_leaves)
    if report.complete and contiguous:
        covered = [size for size in signed if size <= expected]
        if len(covered) != len(signed):
            report.fail(
                f"the bundle holds {expected} records but a checkpoint of size {max(signed)} is signed"
            )
        elif len(report.failures) == before:
            report.passed.append(
                f"{expected} records recomputed: roots at {len(covered)} checkpoint sizes are the signed ones"
            )
    report.uncovered = sum(1 for index in record_leaves if index >= report.latest_checkpoint)
    return record_leaves


def _check_proofs(
    root: Path, signed: dict[int, notes.Checkpoint], record_leaves: dict[int, bytes], report: BundleReport
) -> None:
    path = root / "proofs.jsonl"
    if not signed:
        report.fail("the bundle has no signed checkpoint: nothing vouches for its records")
        return
    latest = signed[report.latest_checkpoint]
    proven: set[int] = set()
    bad = 0
    if path.is_file():
        for number, entry in _jsonl(path):
            try:
                index, size = int(entry["index"]), int(entry["tree_size"])
                proof = [_b64(p, "inclusion proof hash") for p in entry["proof"]]
            except (KeyError, TypeError, ValueError, OverflowError) as error:
                report.fail(f"proofs.jsonl line {number} is malformed: {error}")
                continue
            checkpoint = signed.get(size)
            leaf = record_leaves.get(index)
            if checkpoint is None or leaf is None:
                report.fail(f"proofs.jsonl line {number}: no record {index} or no checkpoint of size {size}")
                continue
            if not merkle.verify_inclusion(leaf, index, size, proof, checkpoint.root):
                report.fail(
                    f"record {index} is NOT in the signed tree of size {size}: it was edited or moved"
                )
                bad += 1
                continue
            proven.add(index)
    report.proofs = len(proven)
    missing = [index for index in record_leaves if index < latest.size and index not in proven]
    if missing and not report.complete:
        report.fail(f"{len(missing)} records have no inclusion proof (first: record {min(missing)})")
    if proven and not bad:
        report.passed.append(
            f"{len(proven)} inclusion proofs verify against the signed checkpoint of size {latest.size}"
        )


def _print(report: BundleReport, stream: Any) -> None:
    print(f"origin {report.origin}  key id {report.key_id}", file=stream)
    print(
        f"records {report.records} ({'complete' if report.complete else 'partial'} export); checkpoints "
        f"{report.checkpoints}, latest of size {report.latest_checkpoint}; "
        f"records after it: {report.uncovered}",
        file=stream,
    )
    for line in report.passed:
        print(f"ok    {line}", file=stream)
    for line in report.failures:
        print(f"FAIL  {line}", file=stream)
    print("VERIFIED" if report.ok else "NOT VERIFIED", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line of ``tools/verify_bundle.py``."""
    parser = argparse.ArgumentParser(description="Verify a synthguard audit export bundle.")
    parser.add_argument("bundle", type=Path, help="the bundle directory or .zip file")
    parser.add_argument(
        "--public-key", type=Path, help="the provider's Ed25519 public key (PEM), obtained separately"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        key = (
            None
            if args.public_key is None
            else public_key_from_pem(args.public_key.read_text(encoding="ascii"))
        )
        report = verify_bundle(args.bundle, public_key=key)
    except (BundleError, OSError, UnicodeDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _print(report, sys.stdout)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
