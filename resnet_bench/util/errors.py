"""Exceptions as data: every failure becomes a status and a one-line reason, in one place.

A cell that cannot run here is ``unavailable`` (``BackendUnavailable``, with the reason), one
whose allocation failed is ``oom``, anything else is ``error``; the reason is the exception's
first line, never a traceback.
"""

from __future__ import annotations

MAX_REASON = 300  # characters of a reason kept in a row


class BackendUnavailable(Exception):
    """This backend cannot run this cell here; the message is the reason."""


def first_line(exc: BaseException, limit: int = MAX_REASON) -> str:
    """``Type: message`` on one line (the message's first line), at most ``limit`` characters."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def first_message(exc: BaseException) -> str:
    """The exception's own message, first line only (its type's name when it has none): for
    errors that name the step that failed and quote the cause."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed: numpy's MemoryError, torch's or a runtime's RuntimeError."""
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or any(
        words in text for words in ("can't allocate memory", "cannot allocate memory", "out of memory",
                                    "outofmemory", "failed to allocate"))


def status_of(exc: BaseException) -> tuple[str, str]:
    """(status, reason) of a failed cell: unavailable (the reason as given), oom or error
    (the exception's first line)."""
    if isinstance(exc, BackendUnavailable):
        return "unavailable", str(exc)
    return ("oom" if is_out_of_memory(exc) else "error"), first_line(exc)
