"""Who is asking: a logged-in person (session) or a machine (token), with the roles it holds."""

from __future__ import annotations

import dataclasses
from typing import Literal

from synthguard.accounts.roles import Role

__all__ = ["Principal"]


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``name`` is the user's name (``kind="session"``) or the token's name (``kind="token"``);
    ``actor`` is what audit records and governance records name as the one who acted.
    """

    name: str
    roles: frozenset[Role]
    kind: Literal["session", "token"] = "session"

    @property
    def actor(self) -> str:
        """``"user:<name>"`` for a person, ``"token:<name>"`` for a machine token."""
        return f"{'user' if self.kind == 'session' else 'token'}:{self.name}"

    def has_any(self, roles: frozenset[Role]) -> bool:
        """True when the principal is an admin, or holds one of ``roles``; any staff when empty."""
        return Role.ADMIN in self.roles or not roles or bool(self.roles & roles)
