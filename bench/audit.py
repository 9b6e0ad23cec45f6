"""Benchmark: audit log appends per second, and proof time as the log grows to 10 million records.

Prints figures, asserts nothing (but every proof it times is also verified). Run::

    .venv/bin/python -m bench.audit [--appends N] [--writers K] [--postgres URL] [--max-exp 7]
                                    [--skip-appends] [--skip-proofs]

1. Appends: ``record_event`` in its own committed write transaction (the real cost of one governance
   write's audit record), beside the bare commit (one row updated and committed: the floor), on a
   SQLite file and on PostgreSQL (``--postgres URL``, default ``SYNTHGUARD_TEST_DATABASE_URL``; a
   temporary schema, dropped afterwards): one writer, then K writer PROCESSES at once (the state-row
   lock serialises them; the figure is the total rate). Each run ends with ``verify_log`` over what
   was written (must be clean).
2. Proofs: the node table for 10**max_exp leaves is built directly on disk in a SQLite file (the
   schema from the migrations; the complete-subtree hashes bulk-inserted; the state row set), then
   ``log.inclusion_proof``, ``log.consistency_proof`` and ``log.root_at`` are timed at tree sizes
   10**4 .. 10**max_exp (default 10**6; ``--max-exp 7`` builds 10**7, several minutes), with the
   number of stored nodes each reads. Side by side: the naive proof that rehashes every leaf of the
   tree (timed up to 10**5, then extrapolated linearly).

The machine the figures in the issue come from was shared by 8 workers on 2 cores: absolute times
are noisy; the shape (appends flat, proof time ~ log n, naive ~ n) is what to read.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tests.store import postgres_schema_url

from synthguard.audit import log, merkle, record_event
from synthguard.audit.verify import verify_log
from synthguard.store import Store, open_store

#: Leaves per chunk of the bulk build: complete subtrees below this are computed and inserted together.
CHUNK_LEVELS = 16


def _leaf(index: int) -> bytes:
    return hashlib.sha256(b"\x00" + index.to_bytes(8, "big")).digest()


# -- appends -------------------------------------------------------------------------------------


def _append(store: Store, count: int, name: str) -> None:
    for n in range(count):
        with store.session(write=True) as session:
            record_event(
                session,
                event="complaint.filed",
                actor="public",
                subject=f"complaint:{name}-{n}",
                data={"n": n, "category": "rumor", "channel": "web"},
            )


def _writer(url: str, count: int, name: str, start: object) -> None:
    with open_store(url) as store:
        with store.session() as session:  # connect before the clock starts
            log.current_size(session)
        start.wait()  # type: ignore[attr-defined]
        _append(store, count, name)


def _bare_commits(store: Store, count: int) -> float:
    """Transactions per second that update one row and commit: the floor any audited write pays."""
    statement = sa.text("UPDATE library_state SET changed_at = changed_at WHERE id = 1")
    started = time.perf_counter()
    for _ in range(count):
        with store.session(write=True) as session:
            session.execute(statement)
    return count / (time.perf_counter() - started)


def _append_rates(url: str, appends: int, writers: int) -> tuple[float, float, float, bool]:
    with open_store(url) as store:
        store.upgrade()
        bare = _bare_commits(store, appends)
        started = time.perf_counter()
        _append(store, appends, "single")
        single = appends / (time.perf_counter() - started)
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(writers + 1)
        each = max(1, appends // writers)
        processes = [
            context.Process(target=_writer, args=(url, each, f"w{k}", start)) for k in range(writers)
        ]
        for process in processes:
            process.start()
        start.wait()  # every process has imported and connected
        started = time.perf_counter()
        for process in processes:
            process.join()
        concurrent = each * writers / (time.perf_counter() - started)
        with store.session() as session:
            ok = (
                verify_log(session, public_key=None).ok
                and log.current_size(session) == appends + each * writers
            )
    return bare, single, concurrent, ok


# -- proofs at scale -----------------------------------------------------------------------------


def _build_nodes(path: Path, leaves: int) -> float:
    """Fill ``audit_nodes`` and the state row of the migrated SQLite file ``path`` for ``leaves`` leaves."""
    started = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    connection.execute("BEGIN")
    insert = "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)"
    chunk = 1 << CHUNK_LEVELS
    tops: list[bytes] = []  # roots of complete chunks (level CHUNK_LEVELS)
    frontier: list[bytes] = []
    for first in range(0, leaves, chunk):
        count = min(chunk, leaves - first)
        level_hashes = [_leaf(i) for i in range(first, first + count)]
        rows = [(0, first + i, h) for i, h in enumerate(level_hashes)]
        level, position = 0, first
        while len(level_hashes) > 1:
            level_hashes = [
                merkle.node_hash(level_hashes[i], level_hashes[i + 1])
                for i in range(0, len(level_hashes) - 1, 2)
            ]
            level, position = level + 1, position // 2
            rows.extend((level, position + i, h) for i, h in enumerate(level_hashes))
        connection.executemany(insert, rows)
        if count == chunk:
            tops.append(level_hashes[0])
        sys.stderr.write(f"\r  built {first + count:>10,} leaves")
    sys.stderr.write("\n")
    # complete subtrees above the chunks
    level_hashes, level = tops, CHUNK_LEVELS
    while len(level_hashes) > 1:
        level_hashes = [
            merkle.node_hash(level_hashes[i], level_hashes[i + 1]) for i in range(0, len(level_hashes) - 1, 2)
        ]
        level += 1
        connection.executemany(insert, [(level, i, h) for i, h in enumerate(level_hashes)])
    # the state row: the frontier from the stored nodes (largest first)
    for lv, ix in merkle.range_nodes(0, leaves):
        (value,) = connection.execute(
            "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (lv, ix)
        ).fetchone()
        frontier.append(value)
    connection.execute(
        "UPDATE audit_state SET size = ?, frontier = ? WHERE id = 1", (leaves, b"".join(frontier))
    )
    connection.execute("COMMIT")
    connection.close()
    return time.perf_counter() - started


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _naive_inclusion(size: int, index: int) -> list[bytes]:
    leaves = [_leaf(i) for i in range(size)]
    nodes = {(0, i): h for i, h in enumerate(leaves)}
    frontier: list[bytes] = []
    for i, h in enumerate(leaves):
        frontier, done = merkle.frontier_append(frontier, i, h)
        nodes.update({(lv, ix): v for lv, ix, v in done})
    return merkle.proof_from_nodes(merkle.inclusion_plan(index, size), nodes)


def _time_proofs(
    session: Session, size: int, indexes: list[int], olds: list[int]
) -> tuple[float, float, float]:
    cycle_i, cycle_c = iter(indexes * 4), iter(olds * 4)
    inclusion = _median_ms(lambda: log.inclusion_proof(session, next(cycle_i), size), 100)
    consistency = _median_ms(lambda: log.consistency_proof(session, next(cycle_c), size), 100)
    roots = _median_ms(lambda: log.root_at(session, size), 50)
    return inclusion, consistency, roots


def _proofs(max_exp: int, folder: Path) -> None:
    path = folder / "audit-bench.db"
    with open_store(f"sqlite:///{path}") as store:
        store.upgrade()
    leaves = 10**max_exp
    print(f"\nProofs: building the node table for {leaves:,} leaves in {path} ...")
    built = _build_nodes(path, leaves)
    print(f"  built in {built:.1f} s; file {path.stat().st_size / 2**20:,.0f} MiB")
    rng = random.Random(7)
    print(
        f"\n  {'tree size':>12}  {'inclusion':>10}  {'nodes':>5}  {'consistency':>11}  {'nodes':>5}  "
        f"{'root_at':>8}  {'naive inclusion (rehash all)':>28}"
    )
    naive_per_leaf = 0.0
    with open_store(f"sqlite:///{path}") as store, store.session() as session:
        for exp in range(4, max_exp + 1):
            size = 10**exp
            root = log.root_at(session, size).root
            indexes = [rng.randrange(size) for _ in range(50)]
            olds = [rng.randrange(1, size) for _ in range(50)]
            for index in indexes[:5]:  # every timed kind of proof is also checked
                proof = log.inclusion_proof(session, index, size)
                assert merkle.verify_inclusion(_leaf(index), index, size, proof, root)
            for old in olds[:5]:
                proof = log.consistency_proof(session, old, size)
                assert merkle.verify_consistency(old, size, log.root_at(session, old).root, root, proof)
            inclusion, consistency, roots = _time_proofs(session, size, indexes, olds)
            inc_nodes = sum(len(part) for part in merkle.inclusion_plan(indexes[0], size))
            con_nodes = sum(len(part) for part in merkle.consistency_plan(olds[0], size))
            if exp <= 5:
                started = time.perf_counter()
                _naive_inclusion(size, indexes[0])
                naive = (time.perf_counter() - started) * 1000
                naive_per_leaf = naive / size
                naive_text = f"{naive:,.0f} ms"
            else:
                naive_text = f"~{naive_per_leaf * size / 1000:,.0f} s (extrapolated)"
            print(
                f"  {size:>12,}  {inclusion:>7.2f} ms  {inc_nodes:>5}  {consistency:>8.2f} ms  "
                f"{con_nodes:>5}  {roots:>5.2f} ms  {naive_text:>28}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appends", type=int, default=1000, help="records per append run (default 1000)")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer processes (default 4)")
    parser.add_argument(
        "--postgres", default=os.environ.get("SYNTHGUARD_TEST_DATABASE_URL"), help="PostgreSQL URL"
    )
    parser.add_argument(
        "--max-exp", type=int, default=6, help="largest tree is 10**N leaves (default 6; 7 takes minutes)"
    )
    parser.add_argument("--skip-appends", action="store_true", help="only the proof benchmark")
    parser.add_argument("--skip-proofs", action="store_true", help="only the append benchmark")
    args = parser.parse_args(argv)
    print("Figures from a shared machine are noisy (see the module docstring).")
    with tempfile.TemporaryDirectory(
        prefix="sg-audit-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
    ) as tmp:
        folder = Path(tmp)
        if not args.skip_appends:
            print(f"\nAppends (one committed transaction per record; {args.writers} writer processes):")
            print(
                f"  {'database':<12} {'bare commit':>14} {'1 writer':>14} "
                f"{f'{args.writers} writers':>14}  verify"
            )
            bare, single, concurrent, ok = _append_rates(
                f"sqlite:///{folder / 'appends.db'}", args.appends, args.writers
            )
            print(
                f"  {'SQLite':<12} {bare:>10,.0f} /s {single:>10,.0f} /s {concurrent:>10,.0f} /s  "
                f"{'ok' if ok else 'FAILED'}"
            )
            if args.postgres:
                with postgres_schema_url(args.postgres, "sgbench") as url:
                    bare, single, concurrent, ok = _append_rates(url, args.appends, args.writers)
                print(
                    f"  {'PostgreSQL':<12} {bare:>10,.0f} /s {single:>10,.0f} /s {concurrent:>10,.0f} /s  "
                    f"{'ok' if ok else 'FAILED'}"
                )
            else:
                print("  PostgreSQL   (skipped: give --postgres URL or set SYNTHGUARD_TEST_DATABASE_URL)")
        if not args.skip_proofs:
            _proofs(args.max_exp, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
