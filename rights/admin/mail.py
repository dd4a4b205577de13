"""The mailbox's staff queue: inbound messages, the ones nobody could read first.

Every role sees the list and each message as it was read (sender, subject, the URLs found, its
words as text). Only leads read the raw source (`rights.view_raw_inboundmessage`), each look
audited; reviewers and leads (`rights.triage_inboundmessage`) make a message into a case
(through intake, as any email) or dismiss it, each audited on the message's stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from rights.admin.base import ViewOnlyAdmin
from rights.errors import DomainError
from rights.mail.parse import parse_message
from rights.mail.receive import message_dismiss, message_make_case, message_raw_viewed
from rights.models import STAFF_QUEUE_STATES, InboundMessage, MailState
from rights.services.intake_checks import InvalidRequest

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices

VIEW_RAW = "rights.view_raw_inboundmessage"
TRIAGE = "rights.triage_inboundmessage"
TEXT_SHOWN = 20_000  # characters of a message's words shown on its page
WORDS_READ = 256 * 1024  # bytes of a message read to show its words


def _staff_id(request: HttpRequest) -> int:
    user_id: int = request.user.pk  # type: ignore[assignment]  # admin_view: logged in
    return user_id


class MailQueueFilter(admin.SimpleListFilter):
    """The queue first: messages waiting for staff, unless another view is chosen."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting for staff"), ("all", "All messages")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "all":
            return queryset
        return queryset.filter(state__in=sorted(STAFF_QUEUE_STATES))

    def choices(self, changelist: Any) -> Iterator[_ListFilterChoices]:
        current = self.value() or "waiting"
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }


class MakeCaseForm(forms.Form):
    email = forms.EmailField(label="Requester's address", max_length=254)
    name = forms.CharField(label="Requester's name", max_length=200)
    urls = forms.CharField(
        label="URLs to take down (one a line)",
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=100_000,
    )

    def url_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["urls"].splitlines() if line.strip()]


@admin.register(InboundMessage)
class InboundMessageAdmin(ViewOnlyAdmin):
    list_display = [
        "__str__",
        "received_at",
        "state",
        "reason",
        "sender",
        "sender_verified",
        "truncated",
        "case_link",
    ]
    list_filter = [MailQueueFilter, "state", "reason", "source", "sender_verified", "truncated"]
    search_fields = ["=sender", "=case__reference", "=message_id"]
    list_select_related = ["case"]
    exclude = ["raw"]
    readonly_fields = [
        "key",
        "source",
        "received_at",
        "size",
        "truncated",
        "state",
        "reason",
        "sender",
        "sender_verified",
        "subject",
        "message_id",
        "urls_found",
        "case_link",
        "processed_at",
        "words",
    ]
    change_form_template = "rights/admin/inbound_change_form.html"

    @admin.display(description="case")
    def case_link(self, obj: InboundMessage) -> str:
        if obj.case is None:
            return "-"
        url = reverse("admin:rights_takedownrequest_change", args=[obj.case_id])
        return format_html('<a href="{}">{}</a>', url, obj.case.reference)

    @admin.display(description="URLs found")
    def urls_found(self, obj: InboundMessage) -> str:
        return "\n".join(str(u) for u in obj.urls) or "-"

    @admin.display(description="words (as text)")
    def words(self, obj: InboundMessage) -> str:
        raw = bytes(obj.raw)
        try:
            # Read from the first WORDS_READ bytes only: a page view never parses 10 MiB.
            text = parse_message(raw[:WORDS_READ], authserv_id="").text
            if len(raw) > WORDS_READ:
                text = f"(the first {WORDS_READ // 1024} KiB only)\n" + text
        except Exception as exc:  # a message no parser reads: say so, the raw source remains
            return f"(could not be read: {type(exc).__name__})"
        return text[:TEXT_SHOWN] or "-"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/raw/",
                self.admin_site.admin_view(self.raw_view),
                name="rights_inboundmessage_raw",
            ),
            path(
                "<int:pk>/triage/",
                self.admin_site.admin_view(self.triage_view),
                name="rights_inboundmessage_triage",
            ),
            *super().get_urls(),
        ]

    def _message(self, pk: int) -> InboundMessage:
        message = InboundMessage.objects.filter(pk=pk).first()
        if message is None:
            raise Http404("no such message")
        return message

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "may_view_raw": request.user.has_perm(VIEW_RAW),
            "may_triage": request.user.has_perm(TRIAGE),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def raw_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(VIEW_RAW):
            raise PermissionDenied
        message = self._message(pk)
        message_raw_viewed(message=message, user_id=_staff_id(request))
        # As text, never as mail or HTML: the browser shows the bytes and runs nothing.
        response = HttpResponse(
            bytes(message.raw).decode("utf-8", errors="replace"),
            content_type="text/plain; charset=utf-8",
        )
        response["Cache-Control"] = "no-store"
        return response

    def triage_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(TRIAGE):
            raise PermissionDenied
        message = self._message(pk)
        error = ""
        status = 200
        if request.method == "POST":
            if request.POST.get("do") == "dismiss":
                try:
                    message_dismiss(message=message, user_id=_staff_id(request))
                except DomainError as exc:
                    error, status = exc.message, 400
                else:
                    self.message_user(request, f"{message} dismissed.", messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:rights_inboundmessage_changelist"))
                form = MakeCaseForm(initial=self._initial(message))
            else:
                form = MakeCaseForm(request.POST)
                if form.is_valid():
                    try:
                        case = message_make_case(
                            message=message,
                            user_id=_staff_id(request),
                            email=form.cleaned_data["email"],
                            name=form.cleaned_data["name"],
                            urls=form.url_list(),
                        )
                    except InvalidRequest as exc:
                        error = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
                        status = 400
                    except DomainError as exc:
                        error, status = exc.message, 400
                    else:
                        self.message_user(
                            request, f"{message} is now case {case.reference}.", messages.SUCCESS
                        )
                        return HttpResponseRedirect(
                            reverse("admin:rights_takedownrequest_change", args=[case.pk])
                        )
                else:
                    status = 400
        else:
            form = MakeCaseForm(initial=self._initial(message))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "message": message,
            "form": form,
            "error": error,
            "title": f"Deal with {message}",
            "dealt_with": message.state not in {*STAFF_QUEUE_STATES, MailState.LIMITED},
        }
        return TemplateResponse(request, "rights/admin/inbound_triage.html", context, status=status)

    @staticmethod
    def _initial(message: InboundMessage) -> dict[str, str]:
        return {
            "email": message.sender,
            "name": message.sender.split("@", 1)[0],
            "urls": "\n".join(str(u) for u in message.urls),
        }
