"""Hot reload: ``LibraryWatcher`` hands a running reviewer (``Swappable``) a newly compiled library
when the library changed or an entry's effective or lapse time has passed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from synthguard.errors import UsageError
from synthguard.review.engine import (
    CompiledLibrary,
    ReviewPolicy,
)
from synthguard.review.library.database import Library
from synthguard.review.library.model import (
    _aware,
    _utcnow,
)

_log = logging.getLogger("synthguard.review.library")  # the package's logger, as before the split


class Swappable(Protocol):
    """What ``LibraryWatcher`` reloads: a reviewer that takes a new compiled library."""

    def swap(self, library: CompiledLibrary, /) -> Any: ...


class LibraryWatcher:
    """Keeps a reviewer on the current library: ``reload_if_changed`` compiles a new
    ``CompiledLibrary`` when the change counter moved or an effective or lapse time has passed, and
    hands it to ``reviewer.swap`` unless its version is the one the reviewer has (a change that
    did not touch the active set, such as a new proposal). ``run`` does that every ``interval``
    seconds until stopped (a service runs it in a thread); a failed reload is logged and the reviewer
    keeps its library::

        reviewer = Reviewer(library.compile(), sink=HitRecorder(store))
        watcher = LibraryWatcher(library, reviewer)
        threading.Thread(target=watcher.run, args=(stop, 5.0), daemon=True).start()
    """

    def __init__(
        self,
        library: Library,
        reviewer: Swappable,
        *,
        review_policy: ReviewPolicy | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.library = library
        self.reviewer = reviewer
        self.review_policy = review_policy
        self.clock = clock
        self._seen: int | None = None
        self._next: dt.datetime | None = None
        self._current: CompiledLibrary | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> CompiledLibrary | None:
        """The library last handed to the reviewer (``None`` before the first reload)."""
        return self._current

    def reload_if_changed(self, now: dt.datetime | None = None) -> CompiledLibrary | None:
        """Compile when something changed since the last reload, and swap when the active set did;
        the library swapped in, or ``None``."""
        at = _aware(now if now is not None else self.clock())
        with self._lock:
            due = self._next is not None and at >= self._next
            if self._seen is not None and not due and self.library.change_counter() == self._seen:
                return None
            compiled = self.library._compile(at, self.review_policy)
            self._seen, self._next = compiled.change_counter, compiled.next_transition
            if self._current is not None and compiled.library.version == self._current.version:
                return None
            self.reviewer.swap(compiled.library)
            self._current = compiled.library
            return compiled.library

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Reload every ``interval`` seconds until ``stop`` is set."""
        if interval <= 0:
            raise UsageError("the reload interval must be positive")
        while not stop.is_set():
            try:
                self.reload_if_changed()
            except Exception:  # a database hiccup must not stop reviews: keep the old library
                _log.exception("library reload failed; the reviewer keeps its current library")
            stop.wait(interval)
