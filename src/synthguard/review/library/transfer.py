"""Bulk import and export (``Library.import_file``, ``import_bytes``, ``export``): the file and
stream handling around ``formats``; an import is written all or nothing by ``ProcedureMixin._import``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import IO, Any

from synthguard.errors import UsageError
from synthguard.review.library.formats import (
    MAX_IMPORT_BYTES,
    _check_keywords,
    _check_rumors,
    _csv_text,
    _json_text,
    _read_rows,
)
from synthguard.review.library.model import (
    FileFormat,
    ImportReport,
    _actor,
    _aware,
)
from synthguard.review.library.rows import _load
from synthguard.review.library.workflow import ProcedureMixin


class TransferMixin(ProcedureMixin):
    """Import from and export to CSV or JSON files and streams."""

    def import_file(
        self,
        path: str | Path,
        actor: str,
        *,
        format: FileFormat | str | None = None,
        approved_by: str | None = None,
        now: dt.datetime | None = None,
    ) -> ImportReport:
        """Import a CSV or JSON file (format from ``format`` or the suffix); see ``import_bytes``."""
        fmt = FileFormat.of(path, format)
        try:
            size = Path(path).stat().st_size
            if size > MAX_IMPORT_BYTES:
                raise UsageError(f"{path}: {size} bytes, more than the {MAX_IMPORT_BYTES} an import may be")
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a folder, not a file") from None
        return self.import_bytes(data, fmt, actor, approved_by=approved_by, now=now)

    def import_bytes(
        self,
        data: bytes,
        format: FileFormat | str,
        actor: str,
        *,
        approved_by: str | None = None,
        now: dt.datetime | None = None,
    ) -> ImportReport:
        """Import entries from CSV or JSON ``data``, all or nothing.

        ``actor`` is the importing user and the proposer of rows without a ``proposer``. Rows with an
        ``approver`` arrive approved, and so do all rows when ``approved_by`` is given (a bulk
        approval, recorded as such); either way the approver must differ from the row's proposer
        under the two-person rule. A row equal to an entry already in the library is left alone
        (``unchanged``); one with the same id and other content is rejected.
        """
        fmt = FileFormat.of("", format)
        actor = _actor(actor, "importing user")
        if approved_by is not None:
            approved_by = _actor(approved_by, "approver")
        specs, errors = _read_rows(data, fmt)
        errors += _check_keywords(specs) + _check_rumors(specs)
        return self._import(
            specs, actor=actor, approved_by=approved_by, now=now, existing_ok=True, errors=errors
        )

    def export_records(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every entry (all states) as export records, sorted by id, with its state at ``now``."""
        at = _aware(now)
        with self.store.session() as session:
            entries = _load(session)
        return [e.to_record(state=self._state(e, at)) for e in entries]

    def export(
        self,
        target: str | Path | IO[str],
        format: FileFormat | str | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> int:
        """Write every entry to ``target`` (a path, or a text stream with ``format``) as CSV or JSON;
        returns the number of entries. Importing the file into an empty library gives the same
        entries (content, proposer, approver, disabled switch)."""
        if isinstance(target, str | Path):
            fmt = FileFormat.of(target, format)
        elif format is None:
            raise UsageError("give the format when exporting to a stream")
        else:
            fmt = FileFormat.of("", format)
        records = self.export_records(now)
        text = _csv_text(records) if fmt is FileFormat.CSV else _json_text(records)
        if isinstance(target, str | Path):
            Path(target).write_text(text, encoding="utf-8", newline="")
        else:
            target.write(text)
        return len(records)
