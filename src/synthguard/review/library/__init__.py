"""The characteristics database (Deep Synthesis Provisions Art. 10): entries, their procedure, records.

A ``Library`` keeps keyword, image-hash and rumor entries in the store (``store/models.py``). Each
entry carries its term (the keyword, the PDQ hash in hex, or the refuted claim), risk category
(``RiskCategory`` code), action, normalisation steps (keywords), reason, source, proposer, approver,
the time it takes effect and the time it lapses, and a state (``EntryState``):

::

    propose ──▶ proposed ──approve (a second person)──▶ approved ──effective_from──▶ active
                   │                                        │                          │
                   └──────────── disable / enable ──────────┴──────── lapses_at ──▶ lapsed
                                  (switched off, kept; enable returns it where it was)

- Nothing becomes active without an approval by someone other than its proposer
  (``LibraryPolicy.require_second_approver``, default true; when false, the proposer may approve).
  The rule is checked when approving and again whenever the active set is computed.
- ``approved`` and ``active`` (and ``lapsed``) follow from the clock: the active set is computed for
  the time a caller gives (``compile(now)``, ``coverage(now)``); ``refresh(now)`` writes the states
  that time has moved on into the table (with change records), so lists and reports show them.
- ``disable`` switches one entry off without deleting it (a false-positive fix that must not wait for
  a release); ``enable`` switches it back on.
- Every change (create, approve, activate, lapse, disable, enable, snapshot) is one row of the change
  log: who, when, which entry, and the entry's record before and after as JSON. Rows are never
  deleted or updated.

Bulk import (``import_file``) reads CSV or JSON (``docs/library-format.md``); every row is checked
and rows that are invalid are reported with their line numbers: then nothing is imported (one
transaction). ``approved_by`` records a bulk approval by a person other than the importing user, so a
vetted list becomes active at once. ``export`` writes the same formats: an export imported into an
empty library gives the same entries.

``snapshot(label, actor)`` freezes the active set: its canonical export (entries sorted by id,
canonical JSON) is stored with its SHA-256 under a version id (``v1``, ``v2``, ...).
``compile(now)`` builds the keyword, hash and rumor indexes from the active set into an immutable
``CompiledLibrary`` whose ``version`` is the id of the newest snapshot with the same digest, or else
``sha256:<digest>`` of the active set: a version always names exactly the entries that were used.

``LibraryWatcher`` hot-reloads a running reviewer: when the library's change counter moved (one
cheap query), or when an entry's effective or lapse time has passed, it compiles a new library and
calls ``reviewer.swap(new)``; reviews in progress keep the library they started with.

``coverage(now)`` counts active keywords (allow-list phrases do not count) per risk against the
TC260-003 minimums (``risks.LibraryMinimums``; figures marked (verify)). ``HitRecorder`` is the
``DecisionSink`` that stores every entry a review matched, with the library version, for the Art. 10
records.

The package's modules, one job each: ``model`` (Enums and values), ``match`` (normalisation steps as
stored), ``formats`` (the CSV and JSON formats), ``rows`` (the tables and the change log),
``workflow`` (the procedure), ``transfer`` (import and export), ``versions`` (snapshots and
compiling), ``coverage``, ``database`` (``Library`` itself), ``watcher`` (hot reload) and ``hits``
(the records of matches). Import from the package: the modules are its layout, not its interface.

>>> from synthguard.store import open_store
>>> with open_store("sqlite://") as store:
...     store.upgrade()
...     library = Library(store)
...     entry = library.propose("口交", "A1.6", "block", actor="alice", reason="sample")
...     _ = library.approve([entry.id], actor="bob")
...     [m.entry_id == entry.id for m in library.compile().keywords.scan("口 交")]
[True]
"""

from __future__ import annotations

from synthguard.review.library.database import Library, load_compiled_library
from synthguard.review.library.formats import (
    COLUMNS,
    JSON_ALIASES,
    JSON_SECTIONS,
    MAX_IMPORT_BYTES,
    REQUIRED_COLUMNS,
)
from synthguard.review.library.hits import Hit, HitRecorder
from synthguard.review.library.match import format_match, parse_match
from synthguard.review.library.model import (
    CategoryCoverage,
    ChangeKind,
    ChangeRecord,
    CoverageReport,
    EntryKind,
    EntryState,
    FileFormat,
    ImportReport,
    LibraryEntry,
    LibraryPolicy,
    RowError,
    Snapshot,
)
from synthguard.review.library.watcher import LibraryWatcher, Swappable

__all__ = [
    "COLUMNS",
    "JSON_ALIASES",
    "JSON_SECTIONS",
    "MAX_IMPORT_BYTES",
    "REQUIRED_COLUMNS",
    "CategoryCoverage",
    "ChangeKind",
    "ChangeRecord",
    "CoverageReport",
    "EntryKind",
    "EntryState",
    "FileFormat",
    "Hit",
    "HitRecorder",
    "ImportReport",
    "Library",
    "LibraryEntry",
    "LibraryPolicy",
    "LibraryWatcher",
    "RowError",
    "Snapshot",
    "Swappable",
    "format_match",
    "load_compiled_library",
    "parse_match",
]
