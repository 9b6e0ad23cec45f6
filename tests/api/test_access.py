"""Access: every staff route refuses anonymous (401) and wrong-role (403) requests.

The routes are read from the app itself (``app.routes``), so a route any area adds is covered the
moment it is included. Public routes are the ones in ``PUBLIC`` and nowhere else; every other route
must depend on ``require_roles`` (whose ``required_roles`` says which roles may pass; ADMIN always).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.api.app import RouteInfo, api_routes, walk_dependencies
from synthguard.api.deps import PublicLimiter
from tests.api.conftest import ClientFactory

#: (method, path) of every route that anyone may call without logging in. Each one but these two
#: (which have limits of their own) is rate limited per client by ``PublicLimiter``.
PUBLIC: Final = frozenset(
    {
        ("GET", "/api/health"),
        ("POST", "/api/auth/login"),
        ("GET", "/api/audit/public-key"),
        ("GET", "/api/complaints/process"),
        ("POST", "/api/complaints"),
        ("POST", "/api/complaints/status"),
        ("POST", "/api/complaints/{tracking_number}/attachments"),
        ("GET", "/api/documents/current/{kind}"),
        ("GET", "/api/documents/filing"),
        ("GET", "/api/documents/versions/{kind}/{version}"),
    }
)


def _required_roles(route: RouteInfo) -> frozenset[Role] | None:
    """The roles ``require_roles`` admits on this route (union if several), ``None`` when unguarded."""
    found: list[frozenset[Role]] = [
        getattr(dep.call, "required_roles")  # noqa: B009 - set on the function by require_roles
        for dep in walk_dependencies(route.dependant)
        if hasattr(dep.call, "required_roles")
    ]
    if not found:
        return None
    # every require_roles on the route must pass: the admitted roles are the intersection, except
    # that an empty set (any staff) admits everyone
    admitted: frozenset[Role] | None = None
    for roles in found:
        if roles:
            admitted = roles if admitted is None else admitted & roles
    return admitted if admitted is not None else frozenset()


def _routes(app: FastAPI) -> list[tuple[str, str, RouteInfo]]:
    return sorted(
        (
            (method, route.path, route)
            for route in api_routes(app)
            for method in route.methods
            if method != "HEAD"
        ),
        key=lambda item: (item[1], item[0]),
    )


OWN_LIMITS: Final = frozenset({("GET", "/api/health"), ("POST", "/api/auth/login")})


def _url(path: str) -> str:
    # any value: authorization is decided before the parameters are even validated
    return re.sub(r"\{[^}]+\}", "1", path)


def _call(client: TestClient, method: str, path: str) -> Any:
    if method in ("GET", "DELETE", "HEAD", "OPTIONS"):
        return client.request(method, _url(path))
    return client.request(method, _url(path), json={})


def test_public_routes_exist_and_every_other_route_is_guarded(app: FastAPI) -> None:
    routes = _routes(app)
    present = {(method, path) for method, path, _ in routes}
    assert present >= PUBLIC, f"stale entries in PUBLIC: {sorted(PUBLIC - present)}"
    unguarded = [
        f"{method} {path}"
        for method, path, route in routes
        if (method, path) not in PUBLIC and _required_roles(route) is None
    ]
    assert not unguarded, f"routes with neither require_roles nor an entry in PUBLIC: {unguarded}"


def test_public_routes_are_rate_limited(app: FastAPI) -> None:
    unlimited = [
        f"{method} {path}"
        for method, path, route in _routes(app)
        if (method, path) in PUBLIC - OWN_LIMITS
        and not any(dep.call is PublicLimiter for dep in walk_dependencies(route.dependant))
    ]
    assert not unlimited, f"public routes without PublicLimiter: {unlimited}"


def test_every_staff_route_refuses_anonymous_requests(app: FastAPI, client: TestClient) -> None:
    wrong: list[str] = []
    for method, path, _route in _routes(app):
        if (method, path) in PUBLIC:
            continue
        response = _call(client, method, path)
        if response.status_code != 401 or response.json().get("error") != "AuthenticationError":
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("kind", ["session", "token"])
def test_every_staff_route_refuses_the_wrong_roles(app: FastAPI, client_as: ClientFactory, kind: str) -> None:
    clients = {
        role: (client_as(role) if kind == "session" else client_as.token(role))
        for role in Role
        if role is not Role.ADMIN
    }
    wrong: list[str] = []
    checked = 0
    for method, path, route in _routes(app):
        if (method, path) in PUBLIC:
            continue
        admitted = _required_roles(route) or frozenset(Role)
        for role, role_client in clients.items():
            if role in admitted:
                continue
            checked += 1
            response = _call(role_client, method, path)
            if response.status_code != 403 or response.json().get("error") != "PermissionDeniedError":
                wrong.append(f"{method} {path} as {role}: {response.status_code} {response.text[:200]}")
    assert checked > 0
    assert not wrong, "\n".join(wrong)


def test_admin_passes_every_guard(app: FastAPI, client_as: ClientFactory) -> None:
    admin = client_as(Role.ADMIN)
    refused = []
    for method, path, _route in _routes(app):
        if (method, path) in PUBLIC or (method, path) == ("POST", "/api/auth/logout"):
            continue
        response = _call(admin, method, path)
        if response.status_code in (401, 403):
            refused.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not refused, "\n".join(refused)


# -- the route table of docs/api.md ------------------------------------------------------------------

DOCS_API: Final = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TABLE_START: Final = "<!-- routes: generated by `python -m tests.api.test_access`; do not edit -->"
TABLE_END: Final = "<!-- end of routes -->"


def route_table(app: FastAPI) -> str:
    """The Markdown table of every route and who may call it."""
    lines = ["| method | path | who may call it |", "|---|---|---|"]
    for method, path, route in _routes(app):
        if (method, path) in PUBLIC:
            who = "anyone (public)"
        else:
            admitted = _required_roles(route) or frozenset()
            who = "any staff" if not admitted else ", ".join(sorted({Role.ADMIN, *admitted}))
        lines.append(f"| {method} | `{path}` | {who} |")
    return "\n".join(lines)


def _documented_table() -> str:
    text = DOCS_API.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    return text[start:end].strip()


def test_docs_list_every_route_and_who_may_call_it(app: FastAPI) -> None:
    assert _documented_table() == route_table(app), (
        "docs/api.md's route table is out of date: run `python -m tests.api.test_access`"
    )


def _write_docs() -> None:  # pragma: no cover - a maintenance command
    import tempfile

    from synthguard.api.app import create_app
    from synthguard.config import Settings
    from tests.store import migrated_store

    with tempfile.TemporaryDirectory() as folder, migrated_store("sqlite", Path(folder)) as store:
        table = route_table(create_app(Settings(), store))
    text = DOCS_API.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    DOCS_API.write_text(f"{text[:start]}\n{table}\n{text[end:]}", encoding="utf-8")
    print(f"wrote the route table of {DOCS_API}")


if __name__ == "__main__":  # pragma: no cover
    _write_docs()
