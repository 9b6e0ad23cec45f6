"""Content-addressed storage of complaint attachments: one file per SHA-256, under ``data_dir``.

``AttachmentStore.put(stream)`` copies an upload into a temporary file beside its final place while
hashing it, refusing it past ``complaint_attachment_max_bytes``; tells its format from its bytes
(``synthguard.media.identify``, never the client's name or Content-Type) and refuses a format not in
``complaint_attachment_types``; then renames it to ``attachments/<d0d1>/<d2d3>/<digest>``. The same
bytes uploaded twice are stored once. The file and its folder are fsynced before ``put`` returns, so
a row committed afterwards (``register``) never names a file that a crash lost.

A crash between ``put`` and the commit of the row leaves a file no row names: harmless (it is
addressed by its content, and the next upload of the same bytes reuses it); ``orphans`` lists them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.config import Settings
from synthguard.errors import ConfigError, MediaError, NotFoundError, UsageError
from synthguard.governance.case_models import AttachmentRow, aware_now
from synthguard.media import Container, identify

__all__ = ["AttachmentStore", "StoredFile", "register"]

_CHUNK: Final = 1 << 16
_DIGEST_RE: Final = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True, slots=True)
class StoredFile:
    digest: str
    size: int
    #: ``media.Container`` value found in the bytes.
    media_type: str


class AttachmentStore:
    """Files by SHA-256 under ``root``, with a size limit and an allow-list of formats."""

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int, allowed: frozenset[str]) -> None:
        self.root: Final = Path(root)
        self.max_bytes: Final = max_bytes
        self.allowed: Final = allowed

    @classmethod
    def from_settings(cls, settings: Settings) -> AttachmentStore:
        known = {c.value for c in Container}
        unknown = sorted(set(settings.complaint_attachment_types) - known)
        if unknown:
            raise ConfigError(f"complaint_attachment_types: unknown formats {', '.join(unknown)}")
        return cls(
            Path(settings.data_dir) / "attachments",
            max_bytes=settings.complaint_attachment_max_bytes,
            allowed=frozenset(settings.complaint_attachment_types),
        )

    def path(self, digest: str) -> Path:
        if not _DIGEST_RE.fullmatch(digest):
            raise UsageError(f"not a SHA-256 digest: {digest[:80]!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    @contextlib.contextmanager
    def open(self, digest: str) -> Iterator[BinaryIO]:
        """The stored file, for reading; ``NotFoundError`` when absent."""
        try:
            fh = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"no attachment {digest}") from None
        with fh:
            yield fh

    def put(self, stream: BinaryIO) -> StoredFile:
        """Store the bytes ``stream`` holds (read to its end); ``UsageError`` when too large, empty,
        or of a format not accepted."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".upload.", suffix=".part", dir=self.root)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "w+b") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UsageError(f"attachment larger than {self.max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                if size == 0:
                    raise UsageError("attachment is empty")
                out.flush()
                try:
                    container = identify(out).container.value
                except MediaError as error:
                    raise UsageError(f"attachment format not accepted: {error}") from None
                if container not in self.allowed:
                    accepted = ", ".join(sorted(self.allowed))
                    raise UsageError(f"attachment format {container} not accepted (accepted: {accepted})")
                os.fsync(out.fileno())
            final = self.path(digest.hexdigest())
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp.replace(final)
                _fsync_dir(final.parent)
            return StoredFile(digest.hexdigest(), size, container)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def digests(self) -> Iterator[str]:
        """Every digest stored."""
        if self.root.is_dir():
            for path in self.root.glob("??/??/*"):
                if _DIGEST_RE.fullmatch(path.name):
                    yield path.name

    def orphans(self, session: Session) -> list[str]:
        """Stored files that no ``case_attachments`` row names."""
        known = set(session.scalars(sa.select(AttachmentRow.digest)))
        return sorted(d for d in self.digests() if d not in known)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def register(session: Session, stored: StoredFile, *, now: dt.datetime | None = None) -> AttachmentRow:
    """The ``case_attachments`` row of a stored file, added unless it is there already."""
    row = session.get(AttachmentRow, stored.digest)
    if row is None:
        row = AttachmentRow(
            digest=stored.digest, size=stored.size, media_type=stored.media_type, created_at=aware_now(now)
        )
        session.add(row)
        try:
            with session.begin_nested():
                session.flush()
        except sa.exc.IntegrityError:  # the same bytes, registered by another request meanwhile
            found = session.get(AttachmentRow, stored.digest, populate_existing=True)
            if found is None:  # pragma: no cover
                raise
            row = found
    return row
