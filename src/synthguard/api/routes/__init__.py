"""The route modules ``create_app`` includes, in order.

Each module named here has ``router = APIRouter(prefix="/api/<area>", tags=["<area>"])``. A name
without a dot is a module of this package (``"health"`` is ``synthguard.api.routes.health``); a
dotted name is imported as given. Add a module with a one-line edit of the tuple.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ROUTER_MODULES"]

ROUTER_MODULES: Final[tuple[str, ...]] = (
    "health",
    "accounts",
    "identity",
    "consent",
    "documents",
    "generation",
    "retention",
    "disposal",
    "complaints",
    "rumors",
    "reports",
    "synthguard.api.routes.audit",
)
