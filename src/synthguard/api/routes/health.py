"""``GET /api/health``: whether the service and its database answer (public; for load balancers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from synthguard import __version__
from synthguard.api.deps import store_dep
from synthguard.api.errors import ErrorBody, error_response
from synthguard.errors import ConfigError
from synthguard.store import Store

__all__ = ["HealthOut", "router"]

router = APIRouter(prefix="/api/health", tags=["health"])


class HealthOut(BaseModel):
    """The service answers, and its database is reachable at schema ``revision``."""

    status: str
    version: str
    database: str
    revision: str | None


@router.get(
    "",
    summary="Service and database health (public)",
    response_model=HealthOut,
    responses={503: {"model": ErrorBody, "description": "The database cannot be reached"}},
)
def health(store: Annotated[Store, Depends(store_dep)]) -> Any:
    """``status`` is ``ok``; a database that cannot be reached answers 503 (``DatabaseUnavailable``)."""
    try:
        revision = store.current_revision()
    except ConfigError as exc:
        return error_response(503, "DatabaseUnavailable", str(exc), {"Retry-After": "5"})
    return HealthOut(status="ok", version=__version__, database=store.dialect, revision=revision)
