"""``create_app``: the FastAPI application over the store, with its errors, headers and limits.

::

    from synthguard.api.app import create_app
    app = create_app(settings, store)       # or create_app(): settings and store from the environment

What the app holds (``app.state``): ``settings``, ``store``, ``session_gate`` (how many requests
hold a database session at once: ``deps.SessionGate``), ``public_limiter`` (the public routes'
rate limit), ``login_limiter`` (per client address) and ``login_name_limiter`` (per user name).

Migrations: ``create_app`` never changes the schema. It checks that the database is at the newest
revision and raises ``ConfigError`` when it is not, so an app never runs against a schema it does
not know. ``synthguard serve`` migrates once, before the workers start (a migration is a deliberate,
serialised step; N workers each migrating at import would race and would hide the step from the
operator's log).

Every response carries security headers (no sniffing, no framing, no referrer, a CSP that allows
nothing, ``Cache-Control: no-store``; HSTS when ``api_cookie_secure``); request bodies are limited
to ``api_max_request_bytes`` (413). The OpenAPI schema is at ``/openapi.json``; there is no bundled
documentation UI (it would load scripts from a CDN).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthguard import __version__
from synthguard.api import deps
from synthguard.api.errors import ERROR_RESPONSES, error_response, install_error_handlers
from synthguard.api.ratelimit import TokenBucketLimiter
from synthguard.config import Settings, load_settings
from synthguard.errors import ConfigError, MediaLimitError
from synthguard.store import Store, open_store

__all__ = [
    "RouteInfo",
    "api_routes",
    "app_from_environment",
    "create_app",
    "router_modules",
    "walk_dependencies",
]

_SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
_HSTS: Final = (b"strict-transport-security", b"max-age=31536000")


def router_modules() -> tuple[str, ...]:
    """Full names of the modules whose ``router`` the app includes (login routes first)."""
    from synthguard.api.routes import ROUTER_MODULES

    names = ["synthguard.api.auth_routes"]
    names += [name if "." in name else f"synthguard.api.routes.{name}" for name in ROUTER_MODULES]
    return tuple(names)


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The API over ``store`` (default: opened from ``settings.resolved_database_url()``).

    A store given here stays the caller's to close; one opened here is closed when the app shuts
    down. Raises ``ConfigError`` when the database is not at the newest migration.
    """
    settings = settings if settings is not None else load_settings()
    owned = store is None
    store = store if store is not None else open_store(settings=settings)
    _check_schema(store)
    deps.trusted_networks(settings)  # a malformed api_trusted_proxies fails here, not per request

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                store.close()

    app = FastAPI(
        title="synthguard",
        version=__version__,
        summary="Governance records, complaints and the audit log of a deep-synthesis service.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    # bounds the sessions requests hold at once, below the pool's connections (see deps)
    app.state.session_gate = deps.SessionGate.for_store(store)
    app.state.public_limiter = TokenBucketLimiter(
        rate=settings.api_public_rate_per_minute, what="requests from this address"
    )
    app.state.login_limiter = TokenBucketLimiter(
        rate=settings.api_login_rate_per_minute, what="login attempts from this address"
    )
    app.state.login_name_limiter = TokenBucketLimiter(
        rate=settings.api_login_rate_per_minute, what="login attempts for this name"
    )
    install_error_handlers(app)
    for name in router_modules():
        module = importlib.import_module(name)
        app.include_router(module.router, responses=ERROR_RESPONSES)
    _check_session_scopes(app)
    app.add_middleware(
        _GuardMiddleware, max_body=settings.api_max_request_bytes, hsts=settings.api_cookie_secure
    )
    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment (``uvicorn --factory`` target of ``serve``)."""
    return create_app()


def _check_schema(store: Store) -> None:
    current, head = store.current_revision(), Store.head_revision()
    if current != head:
        raise ConfigError(
            f"the database {store.url.render_as_string(hide_password=True)} is at revision "
            f"{current or 'none (empty)'}, this code needs {head}: run 'synthguard serve' "
            "(which migrates at start) or Store.upgrade()"
        )


@dataclasses.dataclass(frozen=True)
class RouteInfo:
    """One operation of the app as clients see it: its path (with every prefix), methods, dependencies."""

    path: str
    methods: frozenset[str]
    dependant: Dependant


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API route of ``app``, with included routers flattened (the access test reads this).

    FastAPI from 0.16x keeps included routers as nodes (``iter_route_contexts`` flattens them, with
    the router's prefix and dependencies applied); older versions copy routes into ``app.routes``.
    """
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    contexts: list[Any] = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    found = []
    for context in contexts:
        dependant = getattr(context, "dependant", None)
        if not isinstance(dependant, Dependant):
            continue  # not an API route (the OpenAPI document, a mount)
        found.append(RouteInfo(str(context.path), frozenset(context.methods or ()), dependant))
    return found


def walk_dependencies(dependant: Dependant) -> Iterator[Dependant]:
    """Every dependency of ``dependant``, depth first."""
    for sub in dependant.dependencies:
        yield sub
        yield from walk_dependencies(sub)


def _check_session_scopes(app: FastAPI) -> None:
    """Refuse routes whose database session would commit after the response was sent."""
    for route in api_routes(app):
        for dependant in walk_dependencies(route.dependant):
            if dependant.call in (deps.write_session, deps.read_session) and dependant.scope != "function":
                raise ConfigError(
                    f"route {sorted(route.methods)} {route.path}: use synthguard.api.deps.WriteSession/"
                    "ReadSession (Depends(..., scope='function')) so the transaction ends before "
                    "the response is sent"
                )


class _GuardMiddleware:
    """Security headers on every response; request bodies over ``max_body`` bytes refused (413)."""

    def __init__(self, app: ASGIApp, *, max_body: int, hsts: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.headers = list(_SECURITY_HEADERS) + ([_HSTS] if hsts else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        answered = False

        async def send_with_headers(message: Message) -> None:
            if answered:
                return  # the 413 went out already; the app's own answer is dropped
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        async def too_large() -> None:
            nonlocal answered
            response = error_response(
                413, MediaLimitError.__name__, f"request body over the {self.max_body}-byte limit"
            )
            await response(scope, receive, send_with_headers)
            answered = True

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await too_large()
            return
        received = 0

        async def limited_receive() -> Message:
            # a body without Content-Length (chunked) is counted as it arrives: past the limit the
            # client gets 413 and the app sees the client go away
            nonlocal received
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    await too_large()
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except Exception:
            if not answered:
                raise


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
