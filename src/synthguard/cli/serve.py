"""``synthguard serve``: run the HTTP API with uvicorn, after migrating the database once.

::

    synthguard serve [--host 127.0.0.1] [--port 8000] [--workers 1] [--database URL] [--no-migrate]

The schema is migrated here, once, before any worker starts (``create_app`` itself never migrates:
see ``synthguard.api.app``). With several workers each is a separate process (its own connection
pool and its own in-memory rate-limit buckets) made by ``synthguard.api.app:app_from_environment``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from synthguard.cli.errors import EXIT_USAGE, describe, exit_status
from synthguard.config import ENV_PREFIX, load_settings
from synthguard.errors import SynthguardError, UsageError

__all__ = ["serve"]

err = Console(stderr=True, soft_wrap=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    database: Annotated[
        str | None, typer.Option("--database", help="Database URL (default: settings).")
    ] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Migrate the database to the newest schema first.")
    ] = True,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Run the JSON API (OpenAPI schema at /openapi.json) until interrupted."""
    import uvicorn

    from synthguard.api.app import create_app
    from synthguard.store import open_store

    try:
        if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            raise UsageError(f"--log-level {log_level!r}: use critical, error, warning, info or debug")
        settings = load_settings(database_url=database)
        if database is not None:
            # worker processes read their settings from the environment
            os.environ[f"{ENV_PREFIX}DATABASE_URL"] = database
        with open_store(settings=settings) as store:
            if migrate:
                before = store.current_revision()
                store.upgrade()
                after = store.current_revision()
                if before != after:
                    err.print(f"database migrated from {before or 'empty'} to {after}")
            # fail here, with one line, rather than in every worker
            create_app(settings, store)
        err.print(f"synthguard API on http://{host}:{port} ({workers} worker{'s' * (workers > 1)})")
    except SynthguardError as exc:
        err.print(Text(describe(exc), style="red"))
        raise typer.Exit(exit_status(exc) if not isinstance(exc, UsageError) else EXIT_USAGE) from None
    uvicorn.run(
        "synthguard.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,  # the client address comes from api_trusted_proxies, not from uvicorn
        server_header=False,
    )
