"""Sending SMS verification codes: the ``SmsSender`` interface, a console sender, an HTTP gateway adapter.

A real SMS gateway (a carrier's or a cloud provider's) is a third party this project cannot reach in
tests, so the interface is small and the adapter for a generic JSON gateway is written and tested
against ``httpx.MockTransport``. A provider whose gateway speaks another dialect writes its own class
with the same ``send`` method.

``ConsoleSmsSender`` is for development: it writes the code to the log with the number masked (the
code is short-lived and worthless without the phone; an identity number is never logged anywhere).
``sender_from_settings`` picks the HTTP adapter when ``sms_gateway_url`` is set.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol, runtime_checkable

import httpx

from synthguard.config import Settings
from synthguard.errors import ExternalServiceError
from synthguard.governance.crypto import mask_mobile

__all__ = ["ConsoleSmsSender", "HttpSmsSender", "SmsSender", "sender_from_settings"]

logger: Final = logging.getLogger("synthguard.sms")


@runtime_checkable
class SmsSender(Protocol):
    """Delivers one text message to one mobile number.

    ``phone`` is in E.164 (``+8613812345678``). ``send`` returns once the gateway accepted the
    message, and raises ``ExternalServiceError`` when it did not (the caller's transaction then rolls
    back, so no challenge is left whose code nobody received). It never logs the number unmasked.
    """

    name: str

    def send(self, phone: str, text: str) -> None: ...


class ConsoleSmsSender:
    """Development sender: logs the message (number masked) and keeps it in ``outbox``."""

    name = "console"

    def __init__(self) -> None:
        #: ``(phone, text)`` of every message sent, newest last.
        self.outbox: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.outbox.append((phone, text))
        logger.warning("SMS (console sender, development only) to %s: %s", mask_mobile(phone), text)


class HttpSmsSender:
    """Adapter of a JSON SMS gateway: ``POST {url}`` with ``{"phone": ..., "text": ...}``.

    The gateway answers 2xx when it accepted the message; any other status, a timeout or a connection
    failure is an ``ExternalServiceError`` that names the status, never the number. ``client`` is for
    tests (``httpx.MockTransport``); by default one client is made per sender.
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
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._headers = headers

    def send(self, phone: str, text: str) -> None:
        try:
            response = self._client.post(self.url, json={"phone": phone, "text": text}, headers=self._headers)
        except httpx.HTTPError as exc:
            raise ExternalServiceError(
                f"SMS gateway {self.url} could not be reached: {type(exc).__name__}"
            ) from exc
        if not response.is_success:
            raise ExternalServiceError(
                f"SMS gateway {self.url} refused the message to {mask_mobile(phone)}: "
                f"HTTP {response.status_code}"
            )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSmsSender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def sender_from_settings(settings: Settings) -> SmsSender:
    """The HTTP gateway adapter when ``sms_gateway_url`` is set, else the console sender."""
    if settings.sms_gateway_url:
        return HttpSmsSender(
            settings.sms_gateway_url,
            token=settings.sms_gateway_token,
            timeout=settings.identity_service_timeout_seconds,
        )
    return ConsoleSmsSender()
