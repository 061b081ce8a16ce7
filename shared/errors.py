"""Errors the kernel and the services raise; the app factory turns each into HTTP in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused a command: HTTP 409 with a machine-readable code (or the status given)."""

    status_code = 409

    def __init__(
        self, code: str, message: str = "", *, status_code: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code.replace("_", " ")
        self.headers = headers
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(DomainError):
    status_code = 404

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what}_not_found", f"{what} {ident} does not exist")


class InvalidInputError(DomainError):
    """Input that passed the schema but breaks a rule about its value: HTTP 422 naming the field."""

    status_code = 422

    def __init__(self, field: str, reason: str, *more: tuple[str, str]) -> None:
        super().__init__("invalid_input", reason)
        self.field = field
        self.errors = [(field, reason), *more]  # every field at fault, where there is more than one


class ConcurrencyError(DomainError):
    """The stream moved since it was read: the caller may reload and retry."""

    def __init__(self, stream_id: str, expected: int, actual: int | None = None) -> None:
        super().__init__(
            "concurrency_conflict",
            f"stream {stream_id} is not at version {expected}" + (f" (it is at {actual})" if actual else ""),
        )
        self.stream_id = stream_id
        self.expected = expected
