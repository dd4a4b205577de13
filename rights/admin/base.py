"""Shared admin behaviour."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import BadRequest, PermissionDenied
from django.db import models
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

# Typed URLs without a scheme are https (Django 6's default, and what every source uses).
FORMFIELD_OVERRIDES: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.URLField: {"assume_scheme": "https"},
}


def https_formfield(field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    """`Meta.formfield_callback` for a ModelForm defined outside an admin, same overrides."""
    kwargs = {**FORMFIELD_OVERRIDES.get(type(field), {}), **kwargs}
    return field.formfield(**kwargs)


# The largest primary key PostgreSQL's bigint holds has 19 digits; 18 always fit.
ID_DIGITS = 18


def as_id(value: object) -> int | None:
    """A row id from a URL or a form, or None: ASCII digits only ("²".isdigit() is true, and
    int() refuses it), few enough for the database's bigint."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= ID_DIGITS:
        return int(value)
    return None


class ConsoleAdmin(admin.ModelAdmin):
    """Every list of the console: an action the user is not offered is refused (403), and a
    filter no date can hold is a 400.

    Django's admin answers a posted action it does not offer with the list again, or "No action
    selected": nothing runs, but a crafted post for an act the user may not do deserves a plain
    refusal, and a log line as one.
    """

    formfield_overrides = FORMFIELD_OVERRIDES

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        action = request.POST.get("action") if request.method == "POST" else None
        if action and action not in self.get_actions(request):
            raise PermissionDenied(f"the action {action!r} is not yours to run")
        try:
            return super().changelist_view(request, extra_context)
        except OverflowError as exc:
            # A date filter's year past what a date holds (?received_at__year=99999999999):
            # Django's admin turns other impossible dates into its "?e=1" page, not this one.
            raise BadRequest("a date in the filters is out of range") from exc


class ViewOnlyAdmin(ConsoleAdmin):
    """Everything visible, nothing writable through the admin.

    For the audit trail, and for records that only services may write (a direct edit would skip
    the transition table and the audit event that every change must leave behind).
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ViewOnlyInline(admin.TabularInline):
    formfield_overrides = FORMFIELD_OVERRIDES
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChangedFieldsOnlyAdmin(ConsoleAdmin):
    """Save an edited row with `update_fields` limited to what the form changed.

    A plain `save()` writes every column from the row as it was read, so an edit that races a
    worker's transition would put the old state back; naming the changed fields cannot.
    """

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        if not change:
            obj.save()
            return
        fields = changed_fields(obj, form)
        if fields:
            obj.save(update_fields=fields)


def changed_fields(obj: models.Model, form: ModelForm) -> list[str]:
    """The columns an edit form changed (with derived and auto-now ones); empty when none."""
    concrete = {f.name for f in obj._meta.concrete_fields}
    fields = [name for name in form.changed_data if name in concrete]
    fields += getattr(form, "derived_fields", [])
    if not fields:
        return []
    fields += [
        f.name
        for f in obj._meta.concrete_fields
        if isinstance(f, models.DateTimeField) and f.auto_now
    ]
    return sorted(set(fields))
