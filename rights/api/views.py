"""The partner API's endpoints: interfaces only. Each parses its input, calls one service or
selector, and presents the result; every error is a problem (rights.api.errors).

Every read of cases goes through `selectors.cases_visible_to` with the caller's partner
`Viewer`, so another outlet's case does not exist for the caller: 404, on every endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rights import clock
from rights.api import serializers as s
from rights.api.auth import (
    ClearanceScope,
    PartnerKeyAuthentication,
    PartnerKeyThrottle,
    TakedownsScope,
)
from rights.api.errors import domain_problem, flatten, problem
from rights.errors import DomainError
from rights.models import Channel, PartnerKey
from rights.presenters import Viewer, case_present
from rights.selectors import case_for, cases_for, cases_with_targets
from rights.services.intake import IntakeResult, Submission, takedown_submit, takedowns_submit
from rights.services.requester import case_withdraw
from rights.services.suppression import publication_verdicts
from rights.states import CaseState

# URLs in one batch, all its requests together: a call stays well inside a worker's time limit.
BATCH_MAX_URLS = 1000
PROBLEM = OpenApiResponse(s.ProblemSerializer, description="A problem (RFC 9457).")


def problems(*codes: int) -> dict[int, OpenApiResponse]:
    """The problems an endpoint may answer: these, and those every endpoint may."""
    return {code: PROBLEM for code in sorted({401, 403, 429, *codes})}


# What an endpoint that reads a body may answer about the body itself: chunked without a length
# (411), over MAX_REQUEST_BODY (413), not JSON (415), invalid (422).
BODY_PROBLEMS = (411, 413, 415, 422)


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "Your id for this request (at most 255 characters). A retry with the same key and the "
        "same body returns the first case (200); the same key with another body is a 409."
    ),
)
EXAMPLE_REQUEST = {
    "urls": ["https://www.telegraph.co.uk/news/2026/11/01/an-article/"],
    "basis": "copyright",
    "statements": ["owner_or_agent", "good_faith", "accurate"],
    "explanation": "Our article, republished without a licence.",
    "contact": {"email": "legal@telegraph.co.uk", "name": "Legal desk"},
}


class PartnerView(APIView):
    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [TakedownsScope]
    throttle_classes = [PartnerKeyThrottle]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # A form or multipart body was already read by the middleware that guards every POST
        # (rights.web.errors.UnreadableBodyMiddleware), so DRF would see it as empty: refuse
        # any body that is not JSON here, after the key is checked.
        media_type = request.content_type.split(";", 1)[0].strip().lower()
        if (
            request.method in ("POST", "PUT", "PATCH")
            and media_type
            and media_type != "application/json"
            and not media_type.endswith("+json")
            and request.META.get("CONTENT_LENGTH", "0") not in ("", "0")
        ):
            raise exceptions.UnsupportedMediaType(media_type)

    def viewer(self) -> Viewer:
        key = self.request.auth
        assert isinstance(key, PartnerKey)  # the scope permissions let nothing else through
        return Viewer.partner(key.outlet)

    def actor(self) -> str:
        key = self.request.auth
        assert isinstance(key, PartnerKey)
        return f"partner:{key.outlet.slug}"

    def present(self, reference: str, now: datetime | None = None) -> dict[str, Any]:
        found = case_for(viewer=self.viewer(), reference=reference)
        if found is None:
            raise exceptions.NotFound(f"No takedown request {reference} of yours.")
        case, targets = found
        return case_present(case, targets=targets, viewer=self.viewer(), now=now).as_dict()

    def submission(self, data: dict[str, Any], idempotency_key: str) -> Submission:
        """A validated request as intake takes it in, from this key's outlet."""
        key = self.request.auth
        assert isinstance(key, PartnerKey)
        contact = data["contact"]
        return Submission(
            channel=Channel.API,
            outlet=key.outlet,
            external_id=idempotency_key,
            email=contact["email"],
            name=contact["name"],
            organisation=contact.get("organisation", ""),
            basis=data["basis"],
            urls=data.get("urls", ()),
            whole_domain=data.get("whole_domain", ""),
            explanation=data.get("explanation", ""),
            statements=data["statements"],
        )


class TakedownPagination(CursorPagination):
    """Newest received first; the position is the receipt time, which never changes, so a
    case changing state while a client pages never moves between pages."""

    ordering: tuple[str, ...] = ("-received_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request: Request) -> Any:
        refused = exceptions.ValidationError(
            {"cursor": ["is not a cursor this API gave out; start again without it"]}
        )
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise refused from exc
        # A cursor is only base64: its position must still be a moment before it reaches a
        # query, or a forged one would fail there.
        if cursor is not None and cursor.position is not None:
            try:
                moment = parse_datetime(str(cursor.position))
            except ValueError:
                moment = None
            if moment is None:
                raise refused
        return cursor

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (
            raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size
        ):
            raise exceptions.ValidationError(
                {"page_size": [f"must be a whole number from 1 to {self.max_page_size}"]}
            )
        return super().get_page_size(request) or self.page_size


LIST_PARAMETERS = [
    OpenApiParameter(
        "state", OpenApiTypes.STR, enum=CaseState.values, description="Only cases in this state."
    ),
    OpenApiParameter(
        "updated_since",
        OpenApiTypes.DATETIME,
        description="Only cases changed at or after this moment (ISO 8601 with a time zone).",
    ),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous page's `next`."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200; 50 by default."),
]


class TakedownsView(PartnerView):
    @extend_schema(
        operation_id="takedowns_list",
        summary="Your outlet's takedown requests, newest first",
        parameters=LIST_PARAMETERS,
        responses={
            200: s.CaseOutSerializer(many=True),
            401: PROBLEM,
            403: PROBLEM,
            422: PROBLEM,
            429: PROBLEM,
        },
    )
    def get(self, request: Request) -> Response:
        errors: dict[str, list[str]] = {}
        state = request.query_params.get("state")
        if state is not None and state not in CaseState.values:
            errors["state"] = [f"must be one of {', '.join(CaseState.values)}"]
        since = None
        raw_since = request.query_params.get("updated_since")
        if raw_since is not None:
            try:
                since = parse_datetime(raw_since)
                # In UTC, as the database compares it: an offset that takes it past the years a
                # date can hold is refused here, not by the database.
                since = since.astimezone(UTC) if since and since.tzinfo else since
            except (ValueError, OverflowError):
                since = None
            if since is None or since.tzinfo is None:
                errors["updated_since"] = [
                    "must be an ISO 8601 date and time with a time zone, e.g. 2026-11-30T12:00:00Z"
                ]
        if errors:
            raise exceptions.ValidationError(errors)
        viewer = self.viewer()
        paginator = TakedownPagination()
        page = paginator.paginate_queryset(
            cases_with_targets(viewer=viewer, state=state, updated_since=since), request, view=self
        )
        assert page is not None
        now = clock.now()
        return paginator.get_paginated_response(
            [
                case_present(
                    case, targets=list(case.targets.all()), viewer=viewer, now=now
                ).as_dict()
                for case in page
            ]
        )

    @extend_schema(
        operation_id="takedowns_create",
        summary="File one takedown request",
        description=(
            "Content on your verified domains is approved at once and removed within seconds; "
            "anything else goes to staff review. The deadline is in the answer."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=s.TakedownInSerializer,
        responses={
            201: s.CaseOutSerializer,
            200: OpenApiResponse(s.CaseOutSerializer, description="A retry: the first case."),
            **problems(409, *BODY_PROBLEMS),
        },
        examples=[OpenApiExample("One article", value=EXAMPLE_REQUEST, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.TakedownInSerializer, request.data)
        result = takedown_submit(
            submission=self.submission(data, request.headers.get("Idempotency-Key", ""))
        )
        status_code = 201 if result.created else 200
        body = self.present(result.case.reference)
        return Response(
            body,
            status=status_code,
            headers={"Location": f"/api/v1/takedowns/{body['reference']}"},
        )


class TakedownBatchView(PartnerView):
    @extend_schema(
        operation_id="takedowns_batch",
        summary="File up to 100 takedown requests at once",
        description=(
            "Each item is handled on its own: the answer lists, in order, each item's case "
            "(status 201, or 200 for a retry of an item with the same idempotency_key) or its "
            "problem (4xx, fields named as requests[i].field). One bad item never sinks the rest. "
            f"At most {BATCH_MAX_URLS:,} URLs in one batch, all its requests together."
        ),
        request=s.BatchInDocSerializer,
        responses={
            200: s.BatchOutSerializer,
            **problems(*BODY_PROBLEMS),
        },
        examples=[
            OpenApiExample(
                "Two requests",
                value={"requests": [{**EXAMPLE_REQUEST, "idempotency_key": "cms-4711"}]},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        if "Idempotency-Key" in request.headers:
            # A retry of the whole batch with one key would silently make every case again.
            raise exceptions.ValidationError(
                {
                    "Idempotency-Key": [
                        "a batch takes no Idempotency-Key header: give each item its own "
                        "idempotency_key, and a retry of the batch returns the same cases"
                    ]
                }
            )
        items = _valid(s.BatchInSerializer, request.data)["requests"]
        named = sum(
            len(item["urls"])
            for item in items
            if isinstance(item, dict) and isinstance(item.get("urls"), list)
        )
        if named > BATCH_MAX_URLS:
            raise exceptions.ValidationError(
                {
                    "requests": [
                        f"name {named:,} URLs in all; at most {BATCH_MAX_URLS:,} are accepted in "
                        "one batch (send several batches)"
                    ]
                }
            )
        now = clock.now()
        results: list[dict[str, Any]] = []
        submissions: list[tuple[dict[str, Any], Submission]] = []
        for index, item in enumerate(items):
            prefix = f"requests[{index}]"
            entry: dict[str, Any] = {"index": index}
            results.append(entry)
            try:
                data = _valid(s.BatchItemSerializer, item, prefix=prefix)
            except exceptions.ValidationError as exc:
                entry["status"], entry["problem"] = _item_problem(exc)
                continue
            submissions.append((entry, self.submission(data, data.get("idempotency_key", ""))))
        # The valid items go through intake together: each on its own, in one transaction.
        outcomes = takedowns_submit([submission for _, submission in submissions])
        shown = cases_for(
            viewer=self.viewer(),
            references=[o.case.reference for o in outcomes if isinstance(o, IntakeResult)],
        )
        viewer = self.viewer()
        for (entry, _), outcome in zip(submissions, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                prefix = f"requests[{entry['index']}]"
                entry["status"], entry["problem"] = domain_problem(outcome, prefix=prefix)
                continue
            case, targets = shown[outcome.case.reference]
            entry["status"] = 201 if outcome.created else 200
            entry["case"] = case_present(case, targets=targets, viewer=viewer, now=now).as_dict()
        return Response({"results": results})


class TakedownDetailView(PartnerView):
    @extend_schema(
        operation_id="takedowns_read",
        summary="One of your outlet's takedown requests",
        responses={
            200: s.CaseOutSerializer,
            401: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            429: PROBLEM,
        },
    )
    def get(self, request: Request, reference: str) -> Response:
        return Response(self.present(reference))


class TakedownWithdrawView(PartnerView):
    @extend_schema(
        operation_id="takedowns_withdraw",
        summary="Withdraw a request that has not been decided yet",
        request=None,
        responses={
            200: s.CaseOutSerializer,
            401: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            429: PROBLEM,
        },
    )
    def post(self, request: Request, reference: str) -> Response:
        found = case_for(viewer=self.viewer(), reference=reference)
        if found is None:
            raise exceptions.NotFound(f"No takedown request {reference} of yours.")
        with transaction.atomic():
            case_withdraw(case=found[0], actor=self.actor())
        return Response(self.present(reference))


class ClearanceView(PartnerView):
    permission_classes = [ClearanceScope]

    @extend_schema(
        operation_id="clearance_check",
        summary="May these URLs be published?",
        description=(
            "For each URL (up to 1,000), in order: whether it may be published and, if not, the "
            "suppression rule that blocks it. Every everyday spelling of a removed article "
            "(http/https, www., AMP and mobile hosts, trailing slash, tracking arguments) is "
            "blocked alike. A URL that is not an http(s) URL is never allowed."
        ),
        request=s.ClearanceInSerializer,
        responses={
            200: s.ClearanceOutSerializer,
            **problems(*BODY_PROBLEMS),
        },
        examples=[
            OpenApiExample(
                "Two URLs",
                value={"urls": ["https://www.telegraph.co.uk/news/a/", "https://example.org/b"]},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        urls = _valid(s.ClearanceInSerializer, request.data)["urls"]
        results = []
        for url, verdict in zip(urls, publication_verdicts(urls), strict=True):
            entry: dict[str, Any] = {"url": url, "allowed": verdict.allowed, "blocked_by": None}
            if verdict.rule is not None:
                rule = verdict.rule
                entry["blocked_by"] = {"id": rule.pk, "kind": rule.kind, "value": rule.value}
            if verdict.problem:
                entry["problem"] = verdict.problem
            results.append(entry)
        return Response({"results": results})


def _valid(
    serializer_class: type[s.serializers.Serializer[Any]], data: Any, prefix: str = ""
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise exceptions.ValidationError({prefix or "non_field_errors": ["must be a JSON object"]})
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        detail: Any = {prefix: serializer.errors} if prefix else serializer.errors
        raise exceptions.ValidationError(detail)
    return dict(serializer.validated_data)


def _item_problem(exc: exceptions.ValidationError) -> tuple[int, dict[str, Any]]:
    errors = flatten(exc.detail)
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    return 422, problem(422, code="invalid_request", detail=detail, errors=errors)
