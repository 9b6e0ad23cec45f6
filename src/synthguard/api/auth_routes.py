"""``/api/auth``: log in (a session cookie for people), log out, who am I, change my password.

Login answers with the session in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` unless
``api_cookie_secure`` is false) and, in the body, a CSRF token the client sends back as
``X-CSRF-Token`` with every request that changes something. Machines do not log in: they send
``Authorization: Bearer sg_...`` (``synthguard accounts token``). Attempts are limited per client
address and per user name (``api_login_rate_per_minute``; 429 with ``Retry-After``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts import service
from synthguard.accounts.models import NAME_LENGTH
from synthguard.accounts.roles import Role
from synthguard.api.deps import (
    SESSION_COOKIE,
    AppSettings,
    Principal,
    WriteSession,
    client_ip,
    require_roles,
    store_dep,
)
from synthguard.api.ratelimit import TokenBucketLimiter
from synthguard.errors import AuthenticationError, PermissionDeniedError, UsageError
from synthguard.store import Store

__all__ = ["LoginIn", "LoginOut", "MeOut", "PasswordChangeIn", "router"]

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginIn(BaseModel):
    """A name and password."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_LENGTH)
    password: str = Field(min_length=1, max_length=service.MAX_PASSWORD_LENGTH)


class MeOut(BaseModel):
    """The caller: name, roles, and whether it is a person (session) or a machine (token)."""

    name: str
    roles: list[Role]
    kind: str
    actor: str


class LoginOut(MeOut):
    """A new session: send ``csrf_token`` as ``X-CSRF-Token`` with every unsafe request."""

    csrf_token: str
    expires_at: dt.datetime


class PasswordChangeIn(BaseModel):
    """The current password, and the new one (at least 12 characters)."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=service.MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=service.MAX_PASSWORD_LENGTH)


def _me(principal: Principal) -> MeOut:
    return MeOut(
        name=principal.name,
        roles=sorted(principal.roles),
        kind=principal.kind,
        actor=principal.actor,
    )


@router.post("/login", summary="Log in with a name and password (public, rate limited)")
def login(
    body: LoginIn,
    request: Request,
    response: Response,
    store: Annotated[Store, Depends(store_dep)],
    settings: AppSettings,
) -> LoginOut:
    """Open a session: the cookie ``sg_session`` and, in the body, the CSRF token.

    A session the request's cookie named is ended (a fresh value at every login: no fixation).
    """
    ip = client_ip(request)
    by_ip: TokenBucketLimiter = request.app.state.login_limiter
    by_name: TokenBucketLimiter = request.app.state.login_name_limiter
    by_ip.hit(ip)
    by_name.hit(body.name.casefold())
    result = service.login(store, name=body.name, password=body.password, client=ip, settings=settings)
    replaced = request.cookies.get(SESSION_COOKIE)
    if replaced:  # the browser's previous session ends: one live session per cookie jar
        with store.session(write=True) as session:
            service.logout(session, replaced)
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        max_age=settings.api_session_ttl_minutes * 60,
        path="/",
        secure=settings.api_cookie_secure,
        httponly=True,
        samesite="strict",
    )
    me = _me(result.principal)
    return LoginOut(**me.model_dump(), csrf_token=result.csrf_token, expires_at=result.expires_at)


@router.post("/logout", status_code=204, summary="End the caller's session")
def logout(
    request: Request,
    session: WriteSession,
    principal: Annotated[Principal, Depends(require_roles())],
) -> Response:
    """End the session the cookie names and clear the cookie (tokens are revoked, not logged out)."""
    if principal.kind != "session":
        raise UsageError("a token does not log out; revoke it instead")
    service.logout(session, request.cookies.get(SESSION_COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/me", summary="Who the caller is")
def me(principal: Annotated[Principal, Depends(require_roles())]) -> MeOut:
    """The caller's name, roles and kind."""
    return _me(principal)


@router.post("/password", status_code=204, summary="Change the caller's own password")
def change_password(
    body: PasswordChangeIn,
    request: Request,
    store: Annotated[Store, Depends(store_dep)],
    settings: AppSettings,
    principal: Annotated[Principal, Depends(require_roles())],
) -> Response:
    """Check the current password, set the new one, and end the caller's other sessions."""
    if principal.kind != "session":
        raise UsageError("tokens have no password")
    by_name: TokenBucketLimiter = request.app.state.login_name_limiter
    by_name.hit(principal.name.casefold())
    service.check_password(body.new_password)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    try:
        service.verify_password(store, name=principal.name, password=body.current_password, settings=settings)
    except AuthenticationError:
        raise PermissionDeniedError("the current password is wrong") from None
    with store.session(write=True) as session:
        keep = service.session_id(session, cookie)
        service.set_password(
            session,
            name=principal.name,
            password=body.new_password,
            actor=principal.actor,
            settings=settings,
            keep_session=keep,
        )
    return Response(status_code=204)
