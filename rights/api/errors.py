"""One shape for every error under /api/: RFC 9457 problem details (application/problem+json).

    {"type": "/api/problems/invalid_request", "title": "The request has errors",
     "status": 422, "detail": "urls[1]: is not a URL", "code": "invalid_request",
     "errors": [{"field": "urls[1]", "detail": "is not a URL"}]}

`errors` names each field at fault (dotted, with list indexes: `contact.email`, `urls[1]`,
`requests[3].basis`), so that a developer can act on it. DRF's own exceptions (authentication,
permissions, throttles, parse errors, 404, 405, 406, 415) and the service's `DomainError` go
through `exception_handler`; anything answered before or around DRF (an unknown address under
/api/, a body Django cannot read, a server error) is rewritten by `ProblemMiddleware`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rights.errors import DomainError, NotFound, TransitionNotAllowed
from rights.services.intake import IdempotencyConflict
from rights.services.intake_checks import InvalidRequest

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
API_PREFIX = "/api/"
# How the intake's field names read in the API's request body.
INTAKE_FIELDS = {
    "email": "contact.email",
    "name": "contact.name",
    "organisation": "contact.organisation",
    "external_id": "Idempotency-Key",
}
# Domain errors that are about the state of things, not about the input: 409.
CONFLICT_CODES = frozenset(
    {"not_withdrawable", TransitionNotAllowed.code, IdempotencyConflict.code, "busy"}
)
TITLES = {
    "invalid_request": "The request has errors",
    "idempotency_conflict": "This Idempotency-Key was used for a different request",
    "not_withdrawable": "This request can no longer be withdrawn",
    "not_authenticated": "A partner key is needed",
    "authentication_failed": "The partner key was refused",
    "bad_key": "The partner key was refused",
    "bad_authorization": "The Authorization header is not understood",
    "permission_denied": "This key may not do this",
    "throttled": "Too many requests",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "unsupported_media_type": "Unsupported media type",
    "parse_error": "The body is not valid JSON",
    "not_acceptable": "Not acceptable",
}


def problem(
    status_code: int,
    *,
    code: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{API_PREFIX}problems/{code}",
        "title": title or TITLES.get(code) or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return body


def flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error detail as a flat list of {field, detail}, fields dotted and indexed."""
    if isinstance(detail, Mapping):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            name = str(key)
            if name == "non_field_errors":
                name = ""
            if name.isdigit():  # a list's item, as DRF's ListField reports it
                field = f"{prefix}[{name}]"
            else:
                field = f"{prefix}.{name}" if prefix and name else (prefix or name)
            out += flatten(value, field)
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, list | Mapping) for item in detail):
            return [{"field": prefix, "detail": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item:
                out += flatten(item, f"{prefix}[{index}]")
        return out
    return [{"field": prefix, "detail": str(detail)}]


def _field_name(name: str, prefix: str) -> str:
    head, bracket, rest = name.partition("[")
    if prefix and head == "external_id":
        return f"{prefix}.idempotency_key"  # a batch item's own field, not the header
    name = INTAKE_FIELDS.get(head, head) + bracket + rest
    return f"{prefix}.{name}" if prefix else name


def domain_problem(error: DomainError, *, prefix: str = "") -> tuple[int, dict[str, Any]]:
    """A domain error as (status, problem body); `prefix` places its fields in a batch."""
    if isinstance(error, InvalidRequest):
        errors = [
            {"field": _field_name(name, prefix), "detail": message}
            for name, message in error.errors.items()
        ]
        detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
        return 422, problem(422, code=error.code, detail=detail, errors=errors)
    if isinstance(error, NotFound):
        return 404, problem(404, code=error.code, detail=error.message)
    status_code = 409 if error.code in CONFLICT_CODES else 422
    if error.code == "requester_suspended":
        status_code = 403
    fields = (
        [{"field": _field_name(error.field, prefix), "detail": error.message}]
        if error.field
        else None
    )
    return status_code, problem(status_code, code=error.code, detail=error.message, errors=fields)


def too_large() -> dict[str, Any]:
    """The problem for a body over the limit (DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return problem(
        413,
        code="body_too_large",
        detail=(
            f"The request's body is larger than the {limit:,} bytes accepted; send fewer "
            "requests or URLs in one call."
        ),
    )


def problem_response(
    status_code: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_TYPE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error a view raises, as a problem."""
    if isinstance(exc, DomainError):
        return problem_response(*domain_problem(exc))
    if isinstance(exc, OperationalError) and _sqlstate(exc) in RETRYABLE_SQLSTATES:
        # Two transactions waited on each other and the database stopped one: nothing of this
        # call was written, and the same call again succeeds.
        body = problem(
            503,
            code="try_again",
            detail="A conflicting change was under way; nothing was written. Try again.",
        )
        return problem_response(503, body, headers={"Retry-After": "1"})
    if isinstance(exc, RequestDataTooBig):
        return problem_response(413, too_large())
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten(exc.detail)
        detail = "; ".join(
            f"{e['field']}: {e['detail']}" if e["field"] else e["detail"] for e in errors
        )
        body = problem(
            422, code="invalid_request", detail=detail or "The request has errors.", errors=errors
        )
        return problem_response(422, body, headers=_headers(response))
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        # Whole seconds, rounded up in the header and the words alike (DRF's header rounds
        # down, which asks the client back a moment too early).
        seconds = max(1, math.ceil(wait))
        response["Retry-After"] = str(seconds)
        detail = f"Too many requests for this key; try again in {seconds} seconds."
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, list | dict) else str(code)
    body = problem(response.status_code, code=code, detail=detail)
    return problem_response(response.status_code, body, headers=_headers(response))


# Deadlock detected, serialization failure: the transaction was rolled back, and may be retried.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) if cause is not None else None


def _headers(response: Response) -> dict[str, str]:
    return {
        name: response[name]
        for name in ("WWW-Authenticate", "Retry-After", "Allow")
        if response.has_header(name)
    }


class ProblemMiddleware:
    """Under /api/, an error answered outside a DRF view (no such address, a body Django cannot
    read, a refused CSRF check, a server error) becomes a problem too: the HTML error pages are
    for people, and a partner's client should never have to parse one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.path.startswith(API_PREFIX)
            and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
            and not request.META.get("CONTENT_LENGTH")
        ):
            # Django reads no body without a length: the call would be answered as if empty.
            body = problem(
                411,
                code="length_required",
                detail="Send the body with a Content-Length header; chunked bodies are not read.",
            )
            return HttpResponse(json.dumps(body), status=411, content_type=PROBLEM_TYPE)
        response = self.get_response(request)
        if (
            not request.path.startswith(API_PREFIX)
            or response.status_code < 400
            or response.get("Content-Type", "").startswith(PROBLEM_TYPE)
        ):
            return response
        code = {
            status.HTTP_400_BAD_REQUEST: "bad_request",
            status.HTTP_403_FORBIDDEN: "permission_denied",
            status.HTTP_404_NOT_FOUND: "not_found",
            status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
        }.get(response.status_code, "error")
        detail = {
            "not_found": f"There is no API endpoint at {request.path}; see /api/docs/.",
            "bad_request": "The request's body could not be read.",
        }.get(code, HTTPStatus(response.status_code).phrase)
        if response.status_code >= 500:
            code, detail = "server_error", "The fault is ours; nothing was changed. Try again."
        body = problem(response.status_code, code=code, detail=detail)
        if response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            body = too_large()
        answer = HttpResponse(
            json.dumps(body), status=response.status_code, content_type=PROBLEM_TYPE
        )
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if response.has_header(name):
                answer[name] = response[name]
        return answer
