"""Export the audit log as a bundle an inspector verifies without the database.

Layout of a bundle (a directory, or the same inside a ``.zip``)::

    README.md           the inspector's procedure (docs/audit.md, "Verifying an export")
    manifest.json       format, origin, key id, counts, and the SHA-256 of every other file
    public_key.pem      the Ed25519 key that signs the checkpoints
    records.jsonl       one record a line: index, time, event, actor, subject, data (canonical JSON text)
    checkpoints.jsonl   every signed checkpoint: size and its signed note
    consistency.jsonl   RFC 9162 consistency proofs between successive checkpoints
    proofs.jsonl        an inclusion proof of every record against the latest checkpoint
    tools/verify_bundle.py, tools/sg_merkle.py, tools/sg_notes.py, tools/sg_leaves.py
                        the standalone verifier (Python 3.11+, standard library only)

A complete export holds every record; ``subject=`` exports only that subject's records (their
inclusion proofs vouch for them). The tree is re-checked before anything is written: an export of a
log whose records no longer match its signed checkpoints is refused (``IntegrityError``; run
``audit verify``). The bundle is written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

from synthguard._io import atomic_output
from synthguard.audit import checkpoints, inspector, leaves, log, merkle, notes
from synthguard.config import Settings
from synthguard.errors import ConflictError, IntegrityError, NotFoundError, UsageError

__all__ = ["ExportSummary", "export_bundle"]

_HERE: Final = Path(__file__).resolve().parent
#: The standalone verifier's files: bundle name -> source module file.
TOOLS: Final = {
    "tools/verify_bundle.py": _HERE / "inspector.py",
    "tools/sg_merkle.py": _HERE / "merkle.py",
    "tools/sg_notes.py": _HERE / "notes.py",
    "tools/sg_leaves.py": _HERE / "leaves.py",
}
#: The procedure written into every bundle's README.md (docs/audit.md says the same).
README: Final = """\
## What this bundle is

The provider's tamper-evident audit log (an RFC 9162 Merkle tree of records, with checkpoints signed
with Ed25519 in the C2SP signed-note format), exported for inspection. Nothing here needs the
provider's database or software: only Python 3.11 or newer.

| file | content |
|---|---|
| `records.jsonl` | a record a line: `index`, `time`, `event`, `actor`, `subject`, `data` (canonical JSON) |
| `checkpoints.jsonl` | signed checkpoints (`size`, `note`: origin, tree size, base64 root, signature) |
| `consistency.jsonl` | proofs that each checkpoint extends the previous one |
| `proofs.jsonl` | an inclusion proof of each record in the tree of the latest checkpoint |
| `public_key.pem` | the Ed25519 public key that signs the checkpoints |
| `manifest.json` | counts, key id, and the SHA-256 of every other file |
| `tools/` | the verifier (`verify_bundle.py`, standard library only) |

## Procedure

1. Obtain the provider's checkpoint public key (or its key id) independently of this bundle, e.g.
   from the provider's filing or published documentation; save it as `provider.pem`.
2. Run `python3 tools/verify_bundle.py . --public-key provider.pem` in this directory (add `--json`
   for a machine-readable report). It checks: the manifest digests; that the bundle's key is
   `provider.pem`; every checkpoint signature; that each checkpoint extends the previous one; that
   the records, recomputed leaf by leaf, hash to the signed root at every checkpoint size; and every
   inclusion proof. It prints `VERIFIED` and exits 0, or lists each failure and exits 1.
3. Keep the checkpoints of earlier exports. A later export must be CONSISTENT with them: compare
   an old checkpoint's size and root with the new bundle's (`consistency.jsonl` proves every pair).
   A provider who rewrites history cannot produce such a proof.
4. A record's leaf is the canonical JSON (sorted keys, no spaces, UTF-8) of
   `{"v": 1, "index", "time", "event", "actor", "subject", "data_sha256"}` where `data_sha256` is the
   hex SHA-256 of the record's `data` text; leaf hash = SHA-256(0x00 || leaf), node hash =
   SHA-256(0x01 || left || right) (RFC 9162 section 2.1). Any other implementation of RFC 9162 and
   Ed25519 can repeat every check.

Records after the latest checkpoint (if any) are listed but not yet vouched for by a signature.
Records are never deleted by the provider's software; personal data is kept out of them (masked
or keyed-hash only).
"""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What was exported."""

    path: Path
    records: int
    checkpoints: int
    latest_checkpoint: int
    complete: bool


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"


class _PackedLevels:
    """Every complete-subtree hash of a tree, 32 bytes each in one ``bytes`` per level (about 64 bytes
    a leaf in all: 640 MB for 10 million records, a fifth of a list of ``bytes`` objects)."""

    def __init__(self, leaf_hashes: bytes) -> None:
        size = merkle.HASH_SIZE
        self.levels = [leaf_hashes]
        while len(self.levels[-1]) >= 2 * size:
            below = self.levels[-1]
            pairs = len(below) // (2 * size)
            self.levels.append(
                b"".join(
                    merkle.node_hash(
                        below[2 * i * size : (2 * i + 1) * size],
                        below[(2 * i + 1) * size : (2 * i + 2) * size],
                    )
                    for i in range(pairs)
                )
            )

    def __call__(self, node: tuple[int, int]) -> bytes:
        level, index = node
        return self.levels[level][index * merkle.HASH_SIZE : (index + 1) * merkle.HASH_SIZE]


def _write_records(
    work: Path, records: Iterable[log.AuditRecord], tree_size: int | None
) -> tuple[int, bytes]:
    """Stream ``records.jsonl``; return the count and the packed leaf hashes below ``tree_size``."""
    hashes = bytearray()
    count = 0
    with (work / "records.jsonl").open("wb") as handle:
        for record in records:
            handle.write(_line(record.to_json()))
            count += 1
            if tree_size is not None and record.index < tree_size:
                if record.index * merkle.HASH_SIZE != len(hashes):
                    raise IntegrityError(
                        f"audit record {len(hashes) // merkle.HASH_SIZE} is missing: "
                        "run 'synthguard audit verify'"
                    )
                hashes += record.leaf_hash()
    return count, bytes(hashes)


def _write_full_proofs(work: Path, hashes: bytes, latest: checkpoints.StoredCheckpoint) -> None:
    if len(hashes) != latest.size * merkle.HASH_SIZE or (
        merkle.root_from_leaf_hashes([hashes[i : i + 32] for i in range(0, len(hashes), 32)]) != latest.root
    ):
        raise IntegrityError(
            f"the records do not hash to the signed checkpoint of size {latest.size}: "
            "run 'synthguard audit verify' to find the altered record"
        )
    levels = _PackedLevels(hashes)
    with (work / "proofs.jsonl").open("wb") as handle:
        for index in range(latest.size):
            proof = merkle.proof_from_nodes(merkle.inclusion_plan(index, latest.size), levels)
            handle.write(_line({"index": index, "tree_size": latest.size, "proof": [_b64(h) for h in proof]}))


def _write_subject_proofs(
    work: Path, session: Session, records: list[log.AuditRecord], latest: checkpoints.StoredCheckpoint
) -> None:
    with (work / "proofs.jsonl").open("wb") as handle:
        for record in records:
            if record.index >= latest.size:
                continue
            proof = log.inclusion_proof(session, record.index, latest.size)
            if not merkle.verify_inclusion(record.leaf_hash(), record.index, latest.size, proof, latest.root):
                raise IntegrityError(
                    f"record {record.index} is not in the signed checkpoint of size {latest.size}: "
                    "run 'synthguard audit verify'"
                )
            handle.write(
                _line({"index": record.index, "tree_size": latest.size, "proof": [_b64(h) for h in proof]})
            )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_bundle(
    session: Session,
    settings: Settings,
    target: str | os.PathLike[str],
    *,
    subject: str | None = None,
    checkpoint_now: bool = True,
    actor: str = "system",
) -> ExportSummary:
    """Write the bundle to directory ``target`` (must not exist or be empty), or to a ``.zip`` file.

    ``checkpoint_now``: first sign a checkpoint of the current size, so every record is covered (needs
    the key; the caller commits the session afterwards to keep it). ``ConflictError`` when there is no
    checkpoint to prove against; ``IntegrityError`` when the records do not match it; ``NotFoundError``
    for a subject without records. Records are streamed to disk; a complete export holds the tree's
    hashes in memory (about 64 bytes a record).
    """
    target_path = Path(target)
    if (
        target_path.suffix != ".zip"
        and target_path.exists()
        and (not target_path.is_dir() or any(target_path.iterdir()))
    ):
        raise UsageError(f"{target_path} exists and is not an empty directory")
    signer = checkpoints.signer_from_settings(settings)
    if checkpoint_now and log.current_size(session) > 0:
        checkpoints.make_checkpoint(session, settings, actor=actor)
    stored = checkpoints.list_checkpoints(session)
    if not stored:
        raise ConflictError("the audit log has no checkpoint yet: nothing would vouch for the records")
    latest = stored[-1]
    subject_records = None if subject is None else _subject_records(session, subject)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.", dir=target_path.parent))
    try:
        if subject_records is None:
            count, hashes = _write_records(work, log.iter_records(session), latest.size)
            _write_full_proofs(work, hashes, latest)
            del hashes
        else:
            count, _ = _write_records(work, subject_records, None)
            _write_subject_proofs(work, session, subject_records, latest)
        with (work / "checkpoints.jsonl").open("wb") as handle:
            handle.writelines(_line({"size": c.size, "note": c.note}) for c in stored)
        with (work / "consistency.jsonl").open("wb") as handle:
            for first, second in itertools.pairwise(stored):
                proof = log.consistency_proof(session, first.size, second.size)
                handle.write(
                    _line({"size1": first.size, "size2": second.size, "proof": [_b64(h) for h in proof]})
                )
        (work / "public_key.pem").write_bytes(signer.public_key_pem().encode("ascii"))
        (work / "README.md").write_bytes(_readme(signer, latest, count, subject))
        (work / "tools").mkdir()
        for name, source in TOOLS.items():
            (work / name).write_bytes(source.read_bytes())
        names = sorted(str(path.relative_to(work)) for path in work.rglob("*") if path.is_file())
        manifest = {
            "format": inspector.BUNDLE_FORMAT,
            "origin": signer.origin,
            "key_id": notes.key_hash(signer.origin, signer.public_key).hex(),
            "created_at": log.format_time(dt.datetime.now(dt.UTC)),
            "complete": subject is None,
            "subject": subject,
            "records": count,
            "tree_size": log.current_size(session),
            "latest_checkpoint": latest.size,
            "leaf_format": leaves.LEAF_VERSION,
            "files": {name: _sha256_file(work / name) for name in names},
        }
        (work / "manifest.json").write_bytes(
            json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        )
        if target_path.suffix == ".zip":
            _write_zip(target_path, work)
        else:
            if target_path.exists():
                target_path.rmdir()  # empty, checked above
            work.rename(target_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportSummary(target_path, count, len(stored), latest.size, subject is None)


def _subject_records(session: Session, subject: str) -> list[log.AuditRecord]:
    found = log.find_records(session, subject=subject, limit=1_000_000)
    if not found:
        raise NotFoundError(f"the audit log has no record of subject {subject!r}")
    return found


def _readme(
    signer: checkpoints.CheckpointSigner,
    latest: checkpoints.StoredCheckpoint,
    count: int,
    subject: str | None,
) -> bytes:
    text = README
    scope = "every record of the log" if subject is None else f"the records of subject `{subject}` only"
    header = (
        f"# synthguard audit export\n\nOrigin `{signer.origin}`, key id `{signer.key_id}`; {count} records "
        f"({scope}); latest signed checkpoint of size {latest.size}.\n\n"
    )
    return (header + text).encode("utf-8")


def _write_zip(target: Path, work: Path) -> None:
    with (
        atomic_output(target) as handle,
        zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for path in sorted(work.rglob("*")):
            if path.is_file():
                archive.write(path, str(path.relative_to(work)))
