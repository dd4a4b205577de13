"""The one domain error type.

Every service raises `DomainError` (or a subclass); each interface maps it to its own response:
a form error, an HTTP 4xx body, a CLI exit code. `field` names the input at fault, when one is.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"


class NotFound(DomainError):
    code = "not_found"
