"""Domain errors. The API maps each to one HTTP status; the CLI prints its message."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the runtime reports to a caller.

    `message` is what a caller sees: stable and safe (no hosts, users or driver text);
    `cause` is the underlying error's text, for the logs only.
    """

    status_code = 500

    def __init__(self, message: str, *, cause: BaseException | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = None if cause is None else first_line(cause)

    @property
    def log_text(self) -> str:
        return f"{self.message} ({self.cause})" if self.cause else self.message


def first_line(exc: BaseException | str) -> str:
    """The first line of an error's text (its type name if it has none), for logs."""
    text = str(exc).strip().splitlines()
    if text:
        return text[0]
    return exc if isinstance(exc, str) else type(exc).__name__


class NotFoundError(RagError):
    status_code = 404


class ConflictError(RagError):
    status_code = 409


class EmbeddingMismatchError(ConflictError):
    """A collection was built with a different embedding model or dimension."""


class PayloadTooLargeError(RagError):
    status_code = 413


class UnsupportedMediaTypeError(RagError):
    status_code = 415


class InvalidInputError(RagError):
    status_code = 422

    def __init__(
        self, message: str, field: str | None = None, *, cause: BaseException | str | None = None
    ) -> None:
        super().__init__(message, cause=cause)
        self.field = field


class DocumentRejectedError(InvalidInputError):
    """A provider refused this document for good (a 4xx that retrying cannot change)."""


class ServiceUnavailableError(RagError):
    """A dependency the request needs is down."""

    status_code = 503


class RateLimitedError(RagError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(RagError):
    """A setting the process cannot run with (found while starting); stops it with one line."""
