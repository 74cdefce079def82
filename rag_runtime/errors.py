"""Domain errors. The API maps each to one HTTP status; the CLI prints its message."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the runtime reports to a caller."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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
