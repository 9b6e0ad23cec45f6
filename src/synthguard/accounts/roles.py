"""Staff roles: a closed vocabulary with stable values (stored in the database and in audit records).

=====================  ======================  ====================================================
member                 value                   may
=====================  ======================  ====================================================
``Role.ADMIN``         ``admin``               everything, including accounts and tokens
``Role.REVIEWER``      ``reviewer``            work cases: complaints, disposal, rumors, identity
``Role.COMPLIANCE``    ``compliance_officer``  documents, assessments, filing, reports, retention
``Role.AUDITOR``       ``auditor``             read-only access, and audit log verification
=====================  ======================  ====================================================

``synthguard.api.deps.require_roles`` always lets ``ADMIN`` through; which other roles a route
admits is declared at the route.
"""

from __future__ import annotations

from enum import StrEnum

from synthguard.errors import UsageError

__all__ = ["Role", "parse_roles"]


class Role(StrEnum):
    """A staff role; the values never change (they are storage keys and audit fields)."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    COMPLIANCE = "compliance_officer"
    AUDITOR = "auditor"


def parse_roles(values: object) -> frozenset[Role]:
    """Roles from their values (an iterable of strings); ``UsageError`` names an unknown one."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple | set | frozenset):
        raise UsageError("roles must be a list of role names")
    roles: set[Role] = set()
    for value in values:
        try:
            roles.add(Role(value))
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise UsageError(f"unknown role {value!r} (known: {known})") from None
    return frozenset(roles)
