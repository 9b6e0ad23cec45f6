"""A separate writer process for the concurrency test: ``python -m tests.audit._writer URL NAME COUNT``."""

from __future__ import annotations

import sys

from synthguard.audit import record_event
from synthguard.store import open_store


def main(url: str, name: str, count: int) -> None:
    with open_store(url) as store:
        for n in range(count):
            with store.session(write=True) as session:
                record_event(
                    session,
                    event="complaint.filed",
                    actor=f"user:{name}",
                    subject=f"complaint:{name}-{n}",
                    data={"n": n},
                )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
