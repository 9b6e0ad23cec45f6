"""FastAPI dependencies every route module uses: the caller, its roles, database sessions, settings.

::

    from synthguard.accounts.roles import Role
    from synthguard.api.deps import Principal, PublicLimiter, WriteSession, require_roles

    @router.post("/things", status_code=201)
    def create_thing(
        body: ThingIn,
        session: WriteSession,                                   # committed before the response
        principal: Principal = Depends(require_roles(Role.REVIEWER)),  # ADMIN always allowed
    ) -> ThingOut: ...

    @router.post("/public-things", dependencies=[Depends(PublicLimiter)])   # anonymous, rate limited
    def file_thing(body: ThingIn, session: WriteSession) -> ThingOut: ...

Sessions: ``write_session`` commits after the handler returns and rolls back when it raises;
``read_session`` is a read transaction. Both first take a slot of the app's ``SessionGate``
(``app.state.session_gate``), awaited on the event loop: at most ``SessionGate.sessions`` requests
hold a session at once (fewer than the pool has connections), and on SQLite one writer; the rest
queue in the process, holding no worker thread and no connection (a slot not free within
``GATE_TIMEOUT_S`` is a 503). Why the gate is needed: FastAPI runs a sync route, and then validates
its response, in anyio's worker threads (40 by default), while the transaction stays open until
the response is validated. Without a bound, at 50 concurrent submissions every worker thread went
to a request waiting for a pooled connection (or for SQLite's write lock, or PostgreSQL's lock on
the audit log's state row) while the requests holding them waited for a worker thread to validate
their response: nothing moved until the pool's 30 s timeout or SQLite's 10 s busy timeout failed
the waiters (about 2 requests a second, most of them failing). Commit and rollback run in a thread
outside that pool, as FastAPI does for ``yield`` dependencies.

A session connects at its first statement (on SQLite the write lock is taken then, not when the
dependency runs), so a request that ``require_roles`` refuses takes no lock. Both MUST run with
FastAPI's ``scope="function"`` so that the commit happens before the response is sent (a client
never sees 2xx for a write that did not commit): use the ``WriteSession`` and ``ReadSession``
aliases, or ``Depends(write_session, scope="function")``. ``create_app`` refuses to start when a
route uses them another way.

Authentication (``current_principal``): ``Authorization: Bearer sg_...`` (a machine token), else the
session cookie (a person; an unsafe method then also needs the ``X-CSRF-Token`` header that login
returned), else anonymous. A presented but bad credential is a 401 even where anonymity would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from synthguard.accounts import service
from synthguard.accounts.principal import Principal
from synthguard.accounts.roles import Role
from synthguard.api.ratelimit import TokenBucketLimiter
from synthguard.audit import SETTINGS_INFO_KEY
from synthguard.config import Settings
from synthguard.errors import AuthenticationError, PermissionDeniedError
from synthguard.store import Store

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AppSettings",
    "CurrentPrincipal",
    "Principal",
    "PublicLimiter",
    "ReadSession",
    "SessionGate",
    "WriteSession",
    "client_ip",
    "current_principal",
    "read_session",
    "require_roles",
    "settings_dep",
    "store_dep",
    "trusted_networks",
    "write_session",
]

#: Name of the HttpOnly session cookie.
SESSION_COOKIE: Final = "sg_session"
#: Header that cookie-authenticated unsafe requests must carry (the token returned by login).
CSRF_HEADER: Final = "X-CSRF-Token"
#: Methods that change nothing, so need no CSRF token.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_UNSET: Final = object()
#: Connections of the pool left outside the gate, for sessions that routes and authentication open
#: themselves (``store.session()``): they then always find a connection.
SESSION_HEADROOM: Final = 2
#: Sessions at once when the pool sets no limit.
UNPOOLED_SESSIONS: Final = 16
#: Seconds a request waits for a slot of the gate before a 503 (``sqlalchemy.exc.TimeoutError``).
GATE_TIMEOUT_S: Final = 30.0


def settings_dep(request: Request) -> Settings:
    """The app's ``Settings``."""
    settings: Settings = request.app.state.settings
    return settings


def store_dep(request: Request) -> Store:
    """The app's ``Store``."""
    store: Store = request.app.state.store
    return store


class SessionGate:
    """Bounds the sessions the API's requests hold at once; the others wait on the event loop.

    ``sessions``: slots for read and write sessions together; ``writers``: of those, how many may
    write at once. ``slot`` is awaited on the event loop, so a waiting request holds no worker
    thread and no connection (see the module docstring for the deadlock this prevents). The
    semaphores are made per event loop (a ``TestClient`` may run the app on several in turn).
    """

    def __init__(self, *, sessions: int, writers: int) -> None:
        if sessions < 1 or not 1 <= writers <= sessions:
            raise ValueError(f"need 1 <= writers ({writers}) <= sessions ({sessions})")
        self.sessions: Final = sessions
        self.writers: Final = writers
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[anyio.Semaphore, anyio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    @classmethod
    def for_store(cls, store: Store) -> SessionGate:
        """Sized to ``store``: the pool's connections less ``SESSION_HEADROOM``; on SQLite one writer.

        SQLite takes one writer at a time (``BEGIN IMMEDIATE``); more would only poll its lock.
        """
        limit = store.max_connections
        sessions = max(1, limit - SESSION_HEADROOM) if limit is not None else UNPOOLED_SESSIONS
        return cls(sessions=sessions, writers=1 if store.is_sqlite else sessions)

    def __repr__(self) -> str:
        return f"SessionGate(sessions={self.sessions}, writers={self.writers})"

    @contextlib.asynccontextmanager
    async def slot(self, *, write: bool) -> AsyncIterator[None]:
        """Hold a session slot (and a writer's, when ``write``) for the block; first come, first served.

        Raises ``sqlalchemy.exc.TimeoutError`` (mapped to 503) when none is free within ``GATE_TIMEOUT_S``.
        """
        loop = asyncio.get_running_loop()
        semaphores = self._by_loop.get(loop)
        if semaphores is None:
            # a writer may wait for a lock (SQLite's, or the audit log's row) holding a worker thread
            # while the lock's holder needs one to finish: writers stay below the threads there are
            threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
            writing = max(1, min(self.writers, threads // 2))
            semaphores = (anyio.Semaphore(writing), anyio.Semaphore(self.sessions))
            self._by_loop[loop] = semaphores
        writers, sessions = semaphores
        async with contextlib.AsyncExitStack() as held:
            try:
                with anyio.fail_after(GATE_TIMEOUT_S):
                    if write:  # the writer's slot first: a queued writer then holds no session slot
                        await held.enter_async_context(writers)
                    await held.enter_async_context(sessions)
            except TimeoutError:
                raise sa_exc.TimeoutError(
                    f"no database session free within {GATE_TIMEOUT_S:g} s ({self!r} all in use)"
                ) from None
            yield


async def read_session(request: Request) -> AsyncIterator[Session]:
    """A read transaction on the app's store (use as ``ReadSession``)."""
    async with _gated_session(request, write=False) as session:
        yield session


async def write_session(request: Request) -> AsyncIterator[Session]:
    """A write transaction, committed when the handler returns, rolled back when it raises.

    Use as ``WriteSession`` (FastAPI ``scope="function"``): the commit then precedes the response.
    """
    async with _gated_session(request, write=True) as session:
        yield session


@contextlib.asynccontextmanager
async def _gated_session(request: Request, *, write: bool) -> AsyncIterator[Session]:
    store = store_dep(request)
    settings = settings_dep(request)
    gate: SessionGate = request.app.state.session_gate
    async with gate.slot(write=write):
        # entering connects nothing (the connection comes with the first statement), so it may
        # run on the event loop; leaving commits or rolls back, in a thread
        context = store.session(write=write)
        session = context.__enter__()
        if write:
            # record_event adds a signed checkpoint when one is due and the settings hold the key
            session.info[SETTINGS_INFO_KEY] = settings
        try:
            yield session
        except BaseException as error:
            if not await _leave(context, error):
                raise
        else:
            await _leave(context, None)


async def _leave(context: contextlib.AbstractContextManager[Session], error: BaseException | None) -> bool:
    """``context.__exit__`` in a thread of its own (not one of the route's pool), not cancelled."""
    arguments = (type(error), error, error.__traceback__) if error is not None else (None, None, None)
    suppressed = False
    with anyio.CancelScope(shield=True):
        suppressed = bool(
            await anyio.to_thread.run_sync(context.__exit__, *arguments, limiter=anyio.CapacityLimiter(1))
        )
    return suppressed


def client_ip(request: Request) -> str:
    """The client's address: the peer, or (behind a trusted proxy) the last untrusted hop it forwards.

    ``X-Forwarded-For`` is believed only from the addresses in ``api_trusted_proxies``, and read from
    the right, so a client cannot choose its own key by sending the header itself.
    """
    peer = request.client.host if request.client else "unknown"
    trusted = trusted_networks(settings_dep(request))
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


def current_principal(request: Request) -> Principal | None:
    """The authenticated caller, or ``None`` when no credential was presented.

    Raises ``AuthenticationError`` for a malformed, unknown, expired or revoked credential, and for a
    cookie-authenticated unsafe request without the matching ``X-CSRF-Token``.
    """
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached if isinstance(cached, Principal) else None
    principal: Principal | None
    store = store_dep(request)
    settings = settings_dep(request)
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        principal = service.authenticate_token(store, token.strip(), settings=settings)
    elif cookie:
        principal, csrf_ok = service.authenticate_session(
            store, cookie, csrf_token=request.headers.get(CSRF_HEADER), settings=settings
        )
        if request.method not in SAFE_METHODS and not csrf_ok:
            raise AuthenticationError(
                f"a request that changes something needs the {CSRF_HEADER} header returned by login"
            )
    else:
        principal = None
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal | None, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency that returns the caller when it holds one of ``roles`` (``ADMIN`` always may).

    Anonymous: ``AuthenticationError`` (401); authenticated without a fitting role:
    ``PermissionDeniedError`` (403). With no roles given, any authenticated staff member may.
    The returned function carries ``required_roles`` (the access test and the docs read it).
    """
    allowed = frozenset(Role(role) for role in roles)

    def dependency(principal: CurrentPrincipal) -> Principal:
        if principal is None:
            raise AuthenticationError("log in, or send 'Authorization: Bearer <token>'")
        if not principal.has_any(allowed):
            needed = ", ".join(sorted(role.value for role in allowed | {Role.ADMIN}))
            raise PermissionDeniedError(f"{principal.actor} lacks a role this needs (one of: {needed})")
        return principal

    dependency.__name__ = "require_" + ("_or_".join(sorted(r.value for r in allowed)) or "staff")
    dependency.required_roles = allowed  # type: ignore[attr-defined]
    return dependency


class PublicLimiter:
    """Dependency of public routes: ``api_public_rate_per_minute`` per client address, else 429.

    ``Depends(PublicLimiter)``; the buckets live in the app's process memory (see ``ratelimit``).
    """

    def __init__(self, request: Request) -> None:
        limiter: TokenBucketLimiter = request.app.state.public_limiter
        limiter.hit(client_ip(request))


ReadSession = Annotated[Session, Depends(read_session, scope="function")]
WriteSession = Annotated[Session, Depends(write_session, scope="function")]
AppSettings = Annotated[Settings, Depends(settings_dep)]


def trusted_networks(settings: Settings) -> tuple[Any, ...]:
    """The networks of ``api_trusted_proxies`` (``ConfigError`` for one that is not an address or network)."""
    return _parse_networks(settings.api_trusted_proxies)


_NETWORK_CACHE: dict[tuple[str, ...], tuple[Any, ...]] = {}


def _parse_networks(values: tuple[str, ...]) -> tuple[Any, ...]:
    cached = _NETWORK_CACHE.get(values)
    if cached is None:
        from synthguard.errors import ConfigError

        try:
            cached = tuple(ipaddress.ip_network(value, strict=False) for value in values)
        except ValueError as exc:
            raise ConfigError(f"api_trusted_proxies: {exc}") from exc
        _NETWORK_CACHE[values] = cached
    return cached


def _in(address: str, networks: tuple[Any, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
