"""The one place that maps the exception tree to exit statuses and messages.

Exit status (DESIGN.md command contract): 0 done, 1 a file could not be processed (the others still
are), 2 usage (bad arguments or settings). A user sees what went wrong, never a traceback.
"""

from __future__ import annotations

from typing import Final

from synthguard.errors import ConfigError, SignatureError, SynthguardError, UsageError

__all__ = ["EXIT_FILE_FAILED", "EXIT_OK", "EXIT_USAGE", "describe", "exit_status"]

EXIT_OK: Final = 0
EXIT_FILE_FAILED: Final = 1
EXIT_USAGE: Final = 2


def exit_status(error: BaseException) -> int:
    if isinstance(error, UsageError | ConfigError | SignatureError):
        return EXIT_USAGE
    return EXIT_FILE_FAILED


def describe(error: BaseException) -> str:
    """One line for people: the error's own message, with its kind when it is ours."""
    if isinstance(error, SynthguardError):
        return f"{type(error).__name__}: {error}"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error.strerror or error}"
    return f"internal error ({type(error).__name__}): {error}"
