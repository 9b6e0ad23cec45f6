"""The one exception tree of synthguard.

Every error a user can cause, or a file can cause, is one of these; each carries the context that is
known where it is raised (the path, the container, the offset), and a message that says what is wrong
and, where it helps, what to do. ``cli/errors.py`` maps the tree to exit codes; the web layer maps it to
HTTP statuses. Expected outcomes are values, not exceptions: a file without a label is a ``Detection``
with ``found=False``, not an error.

::

    SynthguardError
    ├── UsageError                  bad arguments or options (exit 2, HTTP 400)
    │   └── InvalidIdentifierError  a malformed resident ID, USCC or mobile number (shown masked)
    ├── ConfigError                 settings that cannot be loaded or make no sense
    ├── LabelError                  the AIGC label itself
    │   ├── InvalidLabelError       malformed JSON, missing member, bad characters, Label not 1/2/3
    │   └── InvalidProviderCodeError
    ├── SignatureError              a key that cannot be loaded, an algorithm not known
    ├── RecordError                 a governance record or the audit log (HTTP status in brackets)
    │   ├── NotFoundError           no such record (404)
    │   ├── ConflictError           a duplicate, or a state change the record's state forbids (409)
    │   └── IntegrityError          the audit log or a stored record fails verification (500; exit 1)
    │       └── DecryptionError     an encrypted field does not decrypt: wrong key, or altered
    ├── AccessError                 who is asking
    │   ├── AuthenticationError     not logged in, bad password, expired session or token (401)
    │   ├── PermissionDeniedError   logged in, but the role does not allow it (403)
    │   └── RateLimitError          too many requests from one client (429)
    ├── ExternalServiceError        an SMS gateway or identity verifier failed (HTTP 503)
    └── MediaError                  a file (``path`` attached where known)
        ├── UnsupportedFormatError  the format found (named) has no carrier here
        ├── CorruptMediaError       truncated or inconsistent structure (``offset`` where known)
        ├── MediaLimitError         a structure larger than a safety limit (hostile or absurd input)
        └── WriteVerificationError  what was written did not read back (never left on disk)
"""

from __future__ import annotations

import os

__all__ = [
    "AccessError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "CorruptMediaError",
    "DecryptionError",
    "ExternalServiceError",
    "IntegrityError",
    "InvalidIdentifierError",
    "InvalidLabelError",
    "InvalidProviderCodeError",
    "LabelError",
    "MediaError",
    "MediaLimitError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RecordError",
    "SignatureError",
    "SynthguardError",
    "UnsupportedFormatError",
    "UsageError",
    "WriteVerificationError",
]


class SynthguardError(Exception):
    """Base of every error synthguard raises on purpose."""


class UsageError(SynthguardError):
    """The caller asked for something that cannot be done as asked."""


class InvalidIdentifierError(UsageError):
    """A resident ID number, unified social credit code or mobile number that is not well formed.

    The message names what is wrong and shows the number only masked: it may end up in a log.
    """


class ConfigError(SynthguardError):
    """Settings are missing, unreadable or inconsistent."""


class LabelError(SynthguardError):
    """Something is wrong with an AIGC label."""


class InvalidLabelError(LabelError):
    """A label that does not follow GB 45438 Annex E (or this project's stricter writing rules)."""


class InvalidProviderCodeError(LabelError):
    """A provider code that does not follow TC260-PG-20252A."""


class SignatureError(SynthguardError):
    """A signing or verification key or algorithm that cannot be used."""


class MediaError(SynthguardError):
    """A problem with a media file; ``path`` names it when known."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        super().__init__(message)

    def __str__(self) -> str:
        message = super().__str__()
        return f"{self.path}: {message}" if self.path else message

    def with_path(self, path: str | os.PathLike[str]) -> MediaError:
        """Attach the path once it is known (parsers work on streams, callers know the name)."""
        if self.path is None:
            self.path = os.fspath(path)
        return self


class UnsupportedFormatError(MediaError):
    """The bytes are of a format that has no label carrier here; ``format_found`` names it."""

    def __init__(
        self, format_found: str, *, path: str | os.PathLike[str] | None = None, hint: str = ""
    ) -> None:
        self.format_found = format_found
        message = f"unsupported format: {format_found}"
        super().__init__(f"{message} ({hint})" if hint else message, path=path)


class CorruptMediaError(MediaError):
    """Truncated or inconsistent structure; ``offset`` is the byte position where it was noticed."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at byte {offset})"
        super().__init__(message, path=path)


class MediaLimitError(MediaError):
    """A structure exceeds a safety limit (an XML bomb, a 2^64-byte box, a huge metadata block)."""


class WriteVerificationError(MediaError):
    """The labeled output did not read back with the intended label; the output was discarded."""


class RecordError(SynthguardError):
    """A governance record or the audit log cannot be read or changed as asked."""


class NotFoundError(RecordError):
    """No record with that identifier (or the caller may not know it exists)."""


class ConflictError(RecordError):
    """A duplicate record, or a state change that the record's current state forbids."""


class IntegrityError(RecordError):
    """Stored data fails verification: an edited, deleted or reordered audit record, a bad proof."""


class DecryptionError(IntegrityError):
    """An encrypted stored field does not decrypt: another key was configured, or the value was altered."""


class ExternalServiceError(SynthguardError):
    """An external service (SMS gateway, identity verification service) failed or could not be reached."""


class AccessError(SynthguardError):
    """Who is asking is unknown, or may not do this."""


class AuthenticationError(AccessError):
    """Not logged in, a wrong password, or an expired or revoked session or token."""


class PermissionDeniedError(AccessError):
    """Authenticated, but no role of the caller allows this."""


class RateLimitError(AccessError):
    """Too many requests from one client; ``retry_after`` seconds until the next is accepted."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
