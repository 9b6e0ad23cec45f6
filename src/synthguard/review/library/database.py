"""``Library``, the characteristics database, assembled from its parts (``workflow``, ``transfer``,
``versions``, ``coverage``), and ``load_compiled_library``, which the review commands use.
"""

from __future__ import annotations

import datetime as dt

from synthguard.config import Settings
from synthguard.errors import ConfigError
from synthguard.review.engine import (
    CompiledLibrary,
    ReviewPolicy,
)
from synthguard.review.library.coverage import CoverageMixin
from synthguard.review.library.transfer import TransferMixin
from synthguard.review.library.versions import VersionsMixin
from synthguard.store.db import Store, open_store


class Library(TransferMixin, VersionsMixin, CoverageMixin):
    """The characteristics database on a ``Store`` (see the package docstring).

    Every method that changes something takes the ``actor`` (who does it) and an optional ``now``
    (default: the current time; aware datetimes only) and runs in one transaction.
    """


def load_compiled_library(
    settings: Settings, *, now: dt.datetime | None = None, review_policy: ReviewPolicy | None = None
) -> CompiledLibrary | None:
    """The library active at ``now`` in the store ``settings`` name, or ``None`` for a database
    without the library's tables (reviewing never creates or migrates a database). Used by
    ``library_loader.load``; a store whose schema is behind the code raises ``ConfigError``."""
    with open_store(settings=settings) as store:
        revision = store.current_revision()
        if revision is None:
            return None
        if revision != Store.head_revision():
            raise ConfigError(
                f"the store is at schema revision {revision}, the code needs {Store.head_revision()}: "
                "run any `synthguard library` command to migrate it"
            )
        return Library(store).compile(now, review_policy=review_policy)
