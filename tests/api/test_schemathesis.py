"""Schemathesis against the OpenAPI schema: no 5xx, and every response conforms to the schema.

Every operation of the app (the routes of every area, as ``create_app`` assembles them) is called
with generated requests, authenticated as an admin machine token, on a migrated SQLite store with
every key a deployment has configured: requests that follow the schema (each response must be
documented and match its schema, and none may be a 5xx), then requests that break it (refused,
never a 5xx). Examples per operation are few (``MAX_EXAMPLES``, ``NEGATIVE_EXAMPLES``) so the run
stays short; CI runs the same.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from synthguard.accounts import service
from synthguard.accounts.roles import Role
from synthguard.api.app import create_app
from synthguard.config import Settings
from synthguard.labels.security import generate_key
from synthguard.store import Store
from tests.store import migrated_store

MAX_EXAMPLES: Final = 10
NEGATIVE_EXAMPLES: Final = 4
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with migrated_store("sqlite", tmp_path) as store:
        yield store


@pytest.fixture
def admin_token(sqlite_store: Store) -> str:
    with sqlite_store.session(write=True) as session:
        made = service.create_token(session, name="schemathesis", roles=[Role.ADMIN], actor="system")
    return made.value


def _complete(settings: Settings) -> Settings:
    """The test settings with every key a production deployment has (so no route lacks one)."""
    checkpoint_key, _public = generate_key("ed25519")
    return dataclasses.replace(
        settings,
        identity_encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        identity_hash_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        audit_checkpoint_key=checkpoint_key,
        audit_checkpoint_interval=16,
    )


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(
    operation: Any, mode: GenerationMode, examples: int, checks: list[Any], headers: dict[str, str]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    run()


@pytest.mark.slow
def test_api_conforms_to_its_schema(sqlite_store: Store, api_settings: Settings, admin_token: str) -> None:
    # one test over every operation (schemathesis's lazy ``from_fixture`` loader does not run on
    # pytest 9); the failures of all operations are reported together
    app = create_app(_complete(api_settings), sqlite_store)
    headers = {"Authorization": f"Bearer {admin_token}"}
    failures: list[str] = []
    operations = _operations(app)
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:
        for mode, examples, checks in (
            (GenerationMode.POSITIVE, MAX_EXAMPLES, CHECKS),
            # requests that break the schema: refused with a 4xx, never a 5xx
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, [not_a_server_error]),
        ):
            try:
                _fuzz(operation, mode, examples, checks, headers)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no parameters: no request can break the schema
            except Exception as exc:  # collect and go on: one report names every broken operation
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
