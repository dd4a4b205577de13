"""The partner API's webhooks: the outlet's endpoint, and the deliveries made to it.

    PUT    /api/v1/webhook/endpoint          {"url": "https://..."}: register or move it
    GET    /api/v1/webhook/endpoint          where it is (never the secret)
    DELETE /api/v1/webhook/endpoint          forget it
    POST   /api/v1/webhook/endpoint/secret   a new signing secret, shown once
    GET    /api/v1/webhook/deliveries        the outlet's own deliveries, newest first

Every query is the key's outlet's: the views read `request.auth.outlet` and nothing else.
The `whsec_` secret is in an answer only when it is made (first registration, rotation).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from rights.api.serializers import StrictSerializer
from rights.api.views import BODY_PROBLEMS, PartnerView, TakedownPagination, problems
from rights.models import Outlet, PartnerKey, WebhookDelivery, WebhookEndpoint
from rights.presenters import iso
from rights.services import webhooks


class EndpointInSerializer(StrictSerializer):
    url = serializers.CharField(
        max_length=webhooks.MAX_URL,
        help_text="An https URL on the public internet; events are POSTed to it.",
    )


class EndpointOutSerializer(serializers.Serializer[Any]):
    url = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    secret_rotated_at = serializers.DateTimeField()
    secret = serializers.CharField(
        required=False,
        help_text="`whsec_...`: only in the answer that made it. Keep it; it is not shown again.",
    )
    event_types = serializers.ListField(child=serializers.CharField())


class DeliverySerializer(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="The `webhook-id` header: the same on every attempt.")
    event_type = serializers.CharField()
    state = serializers.ChoiceField(choices=["pending", "delivered", "dead"])
    attempts = serializers.IntegerField()
    last_status = serializers.IntegerField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    case = serializers.CharField(help_text="The case's reference.")


class DeliveryPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = DeliverySerializer(many=True)


def _endpoint(endpoint: WebhookEndpoint, secret: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": endpoint.url,
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
        "secret_rotated_at": iso(endpoint.secret_rotated_at),
        "event_types": list(webhooks.EVENT_TYPES),
    }
    if secret:
        body["secret"] = secret
    return body


def _delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    notification = delivery.notification
    pending = delivery.state == "pending"
    return {
        "id": delivery.message_id,
        "event_type": delivery.event_type,
        "state": delivery.state,
        "attempts": notification.attempts,
        "last_status": delivery.last_status,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(notification.next_attempt_at) if pending else None,
        "created_at": iso(delivery.created_at),
        "case": delivery.payload.get("data", {}).get("reference", ""),
    }


class WebhookView(PartnerView):
    def outlet(self) -> Outlet:
        key = self.request.auth
        assert isinstance(key, PartnerKey)  # the scope permission lets nothing else through
        return key.outlet


EXAMPLE_ENDPOINT = OpenApiExample(
    "Register",
    value={"url": "https://hooks.telegraph.co.uk/takedowns"},
    request_only=True,
)


class EndpointView(WebhookView):
    @extend_schema(
        operation_id="webhook_endpoint_read",
        summary="Where your events are sent",
        responses={200: EndpointOutSerializer, **problems(404)},
    )
    def get(self, request: Request) -> Response:
        endpoint = WebhookEndpoint.objects.filter(outlet=self.outlet()).first()
        if endpoint is None:
            raise exceptions.NotFound("No webhook endpoint is registered.")
        return Response(_endpoint(endpoint))

    @extend_schema(
        operation_id="webhook_endpoint_put",
        summary="Register your endpoint, or move it",
        description=(
            "The first registration answers 201 with the signing secret (`whsec_...`), shown "
            "once. Moving the endpoint keeps the secret (200, no secret). The URL must be https "
            "and resolve to public addresses only."
        ),
        request=EndpointInSerializer,
        examples=[EXAMPLE_ENDPOINT],
        responses={
            200: EndpointOutSerializer,
            201: EndpointOutSerializer,
            **problems(*BODY_PROBLEMS),
        },
    )
    def put(self, request: Request) -> Response:
        serializer = EndpointInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = webhooks.endpoint_register(
            outlet=self.outlet(), url=serializer.validated_data["url"], actor=self.actor()
        )
        return _secret_answer(Response(_endpoint(endpoint, secret), status=201 if secret else 200))

    @extend_schema(
        operation_id="webhook_endpoint_delete",
        summary="Stop sending events",
        responses={204: None, **problems(404)},
    )
    def delete(self, request: Request) -> Response:
        if not webhooks.endpoint_remove(outlet=self.outlet(), actor=self.actor()):
            raise exceptions.NotFound("No webhook endpoint is registered.")
        return Response(status=204)


class EndpointSecretView(WebhookView):
    @extend_schema(
        operation_id="webhook_secret_rotate",
        summary="A new signing secret",
        description="Answers the new `whsec_` secret once; the old one stops signing at once.",
        request=None,
        responses={200: EndpointOutSerializer, **problems(404)},
    )
    def post(self, request: Request) -> Response:
        endpoint, secret = webhooks.endpoint_rotate_secret(outlet=self.outlet(), actor=self.actor())
        return _secret_answer(Response(_endpoint(endpoint, secret)))


class DeliveryPagination(TakedownPagination):
    """Newest first, by the delivery's id, which never changes."""

    ordering = ("-pk",)

    def decode_cursor(self, request: Request) -> Cursor | None:
        # The takedowns' check wants a moment; here the position is an id, and a forged one
        # must still be a whole number the database can compare before it reaches a query.
        refused = exceptions.ValidationError(
            {"cursor": ["is not a cursor this API gave out; start again without it"]}
        )
        try:
            cursor = CursorPagination.decode_cursor(self, request)
        except exceptions.NotFound as exc:
            raise refused from exc
        position = str(cursor.position) if cursor is not None and cursor.position else ""
        if position and not (position.isascii() and position.isdigit() and int(position) < 2**63):
            raise refused
        return cursor


class DeliveriesView(WebhookView):
    @extend_schema(
        operation_id="webhook_deliveries_list",
        summary="Your webhook deliveries, newest first",
        parameters=[
            OpenApiParameter(
                "cursor", OpenApiTypes.STR, description="From the previous page's `next`."
            ),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200; 50 by default."),
        ],
        responses={200: DeliveryPageSerializer, **problems(422)},
    )
    def get(self, request: Request) -> Response:
        paginator = DeliveryPagination()
        page = paginator.paginate_queryset(
            webhooks.partner_deliveries(self.outlet()), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response([_delivery(d) for d in page])


def _secret_answer(response: Response) -> Response:
    """An answer that may hold the signing secret, shown once: no cache may keep it."""
    response["Cache-Control"] = "no-store"
    return response
