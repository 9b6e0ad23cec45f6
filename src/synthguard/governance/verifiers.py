"""External identity verification: the ``IdentityVerifier`` interface, a static verifier, an HTTP adapter.

A checksum proves only that a number is well formed, never that it belongs to the person (review
spec). Real verification goes through a third party: a carrier's three-element check, a two-element
(name + ID number) check of an authorised provider, or the national network identity authentication
service. None can be reached from here, so the interface is small, ``HttpIdentityVerifier`` is an
adapter for a generic JSON service (tested against ``httpx.MockTransport``), and
``StaticIdentityVerifier`` answers from a fixed table (tests and demonstrations).

The number and name go to the verifier and nowhere else: results carry the provider's reference, never
the number.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx

from synthguard.config import Settings
from synthguard.errors import ExternalServiceError

__all__ = [
    "HttpIdentityVerifier",
    "IdentityVerifier",
    "StaticIdentityVerifier",
    "VerificationOutcome",
    "VerificationRequest",
    "VerificationResult",
    "verifier_from_settings",
]


class VerificationOutcome(enum.StrEnum):
    """What the external service said."""

    #: The number exists and belongs to the named person or organisation.
    MATCH = "match"
    #: The number does not exist, or belongs to someone else.
    MISMATCH = "mismatch"
    #: No answer (the identity stays pending; try again or review by hand).
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class VerificationRequest:
    """One question to the service: does ``number`` of ``id_type`` belong to ``name``?"""

    id_type: str
    number: str
    name: str

    def __repr__(self) -> str:  # never print the number or name, even in a traceback
        return f"VerificationRequest(id_type={self.id_type!r}, number=<hidden>, name=<hidden>)"


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The answer, with the service's own reference for the check (for the record)."""

    outcome: VerificationOutcome
    reference: str = ""
    detail: str = ""


@runtime_checkable
class IdentityVerifier(Protocol):
    """Checks an identity with an external service. ``name`` identifies the service in the records.

    ``verify`` returns ``UNAVAILABLE`` (not an exception) when the service cannot answer, so that a
    submission is still recorded as pending.
    """

    name: str

    def verify(self, request: VerificationRequest) -> VerificationResult: ...


class StaticIdentityVerifier:
    """Answers MATCH for the listed ``(id_type, number, name)`` triples, MISMATCH for anything else."""

    name = "static"

    def __init__(self, known: Iterable[tuple[str, str, str]] = (), *, available: bool = True) -> None:
        self._known = frozenset(known)
        self.available = available
        #: How many questions were asked (tests check that no call was made when none should be).
        self.calls = 0

    def verify(self, request: VerificationRequest) -> VerificationResult:
        self.calls += 1
        if not self.available:
            return VerificationResult(VerificationOutcome.UNAVAILABLE, detail="static verifier switched off")
        if (request.id_type, request.number, request.name) in self._known:
            return VerificationResult(VerificationOutcome.MATCH, reference=f"static-{self.calls}")
        return VerificationResult(VerificationOutcome.MISMATCH, reference=f"static-{self.calls}")


class HttpIdentityVerifier:
    """Adapter of a JSON verification service: ``POST {url}`` with ``{"type", "number", "name"}``.

    Expected answer: ``{"result": "match" | "mismatch", "reference": "..."}`` with status 200. A
    timeout, a connection failure or a 5xx status is ``UNAVAILABLE``; a 4xx status (our request or our
    credentials are wrong) or an answer in another shape raises ``ExternalServiceError``, because
    retrying will not help and an operator must look.
    """

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def verify(self, request: VerificationRequest) -> VerificationResult:
        body = {"type": request.id_type, "number": request.number, "name": request.name}
        try:
            response = self._client.post(self.url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            return VerificationResult(VerificationOutcome.UNAVAILABLE, detail=type(exc).__name__)
        if response.status_code >= 500:
            return VerificationResult(VerificationOutcome.UNAVAILABLE, detail=f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise ExternalServiceError(
                f"identity verification service {self.url} refused the request: HTTP {response.status_code}"
            )
        try:
            answer = response.json()
            outcome = VerificationOutcome(answer["result"])
            reference = str(answer.get("reference", ""))[:200]
        except (ValueError, KeyError, TypeError) as exc:
            raise ExternalServiceError(
                f"identity verification service {self.url} answered in an unknown shape"
            ) from exc
        if outcome is VerificationOutcome.UNAVAILABLE:
            return VerificationResult(outcome, reference=reference, detail="service said unavailable")
        return VerificationResult(outcome, reference=reference)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpIdentityVerifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def verifier_from_settings(settings: Settings) -> IdentityVerifier | None:
    """The HTTP adapter when ``identity_verifier_url`` is set; ``None`` (manual review) otherwise."""
    if not settings.identity_verifier_url:
        return None
    return HttpIdentityVerifier(
        settings.identity_verifier_url,
        token=settings.identity_verifier_token,
        timeout=settings.identity_service_timeout_seconds,
    )
