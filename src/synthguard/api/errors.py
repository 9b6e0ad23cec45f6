"""The one place that maps the exception tree (``synthguard.errors``) to HTTP responses.

Every error response has the same JSON body (``ErrorBody``)::

    {"error": "NotFoundError", "message": "no complaint SG-2026-000123"}

``error`` is the exception's class name (a stable vocabulary: the names in ``synthguard.errors``,
plus ``HTTPError`` for routing errors and ``InternalError``); ``message`` says what is wrong. Request
validation keeps FastAPI's 422 body (``{"detail": [...]}``), which the OpenAPI schema describes.

=======================================  ======  ============================================
exception                                status  notes
=======================================  ======  ============================================
``UsageError``, ``LabelError``,          400
``SignatureError``, ``MediaError``
``MediaLimitError``                      413
``AuthenticationError``                  401     ``WWW-Authenticate: Bearer``
``PermissionDeniedError``                403
``NotFoundError``                        404
``ConflictError`` (and SQL uniqueness)   409     a duplicate, or a forbidden state change
``RateLimitError``                       429     ``Retry-After`` in whole seconds
``IntegrityError``, ``ConfigError``      500     stored data fails verification; bad settings
database unreachable or locked,          503     ``Retry-After: 1``
no connection free in time (SQLAlchemy
``TimeoutError``)
anything else                            500     logged with its traceback; the body says nothing
=======================================  ======  ============================================
"""

from __future__ import annotations

import logging
import math
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthguard.errors import (
    AccessError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    IntegrityError,
    MediaLimitError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RecordError,
    SynthguardError,
)

__all__ = ["ERROR_RESPONSES", "ErrorBody", "error_response", "install_error_handlers", "status_for"]

log = logging.getLogger("synthguard.api")


class ErrorBody(BaseModel):
    """The body of every error response but request validation (422)."""

    model_config = ConfigDict(extra="forbid")

    error: str
    message: str


_STATUS: Final[tuple[tuple[type[Exception], int], ...]] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (RateLimitError, 429),
    (AccessError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (IntegrityError, 500),
    (RecordError, 409),
    (MediaLimitError, 413),
    (ConfigError, 500),
    (SynthguardError, 400),
)

#: Error statuses every route may answer, for the OpenAPI schema (``include_router(responses=...)``).
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request (UsageError and other request errors)"),
        (401, "Not authenticated"),
        (403, "Authenticated, but no role of the caller allows this"),
        (404, "No such record"),
        (409, "Conflict with the record's state, or a duplicate"),
        (413, "Request body too large"),
        (429, "Rate limited; see Retry-After"),
    )
}


def status_for(error: BaseException) -> int:
    """The HTTP status of one of synthguard's exceptions (500 for anything else)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A response with the common error body."""
    body = ErrorBody(error=kind, message=message).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


async def _synthguard_error(request: Request, error: Exception) -> JSONResponse:
    status = status_for(error)
    headers: dict[str, str] = {}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RateLimitError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if status >= 500:
        log.error("%s %s: %s: %s", request.method, request.url.path, type(error).__name__, error)
    return error_response(status, type(error).__name__, str(error), headers)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers) if error.headers else None
    return error_response(error.status_code, "HTTPError", str(error.detail), headers)


async def _sql_uniqueness(request: Request, error: Exception) -> JSONResponse:
    # two requests raced to create the same record: the loser's insert hit the unique constraint
    log.info("%s %s: unique constraint: %s", request.method, request.url.path, error)
    return error_response(409, ConflictError.__name__, "a record with that identity already exists")


async def _sql_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, error)
    return error_response(
        503, "DatabaseUnavailable", "the database is busy or unreachable; retry", {"Retry-After": "1"}
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("%s %s: unexpected error", request.method, request.url.path, exc_info=error)
    return error_response(500, "InternalError", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(SynthguardError, _synthguard_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.IntegrityError, _sql_uniqueness)
    app.add_exception_handler(sa_exc.OperationalError, _sql_unavailable)
    # the pool (or the API's session gate, ``deps``) had no connection free in time: busy, not broken
    app.add_exception_handler(sa_exc.TimeoutError, _sql_unavailable)
    app.add_exception_handler(Exception, _unexpected)
