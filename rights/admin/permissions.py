"""The staff roles' permissions as the console uses them: their names (rights.permissions, the
one list) and whom a case may be assigned to."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet

from rights.permissions import (
    ASSIGN_CASE,
    DECIDE_APPEAL,
    DECIDE_CASE,
    ERASE_REQUESTER,
    MANAGE_PARTNER_KEYS,
    RESTORE_CASE,
    RETRY_REMOVAL_EFFECT,
    RETRY_WEBHOOK_DELIVERY,
    ROLES,
    SUSPEND_REQUESTER,
    VIEW_SLA_DASHBOARD,
    may_decide,
)

__all__ = [
    "ASSIGN_CASE",
    "DECIDE_APPEAL",
    "DECIDE_CASE",
    "ERASE_REQUESTER",
    "MANAGE_PARTNER_KEYS",
    "RESTORE_CASE",
    "RETRY_REMOVAL_EFFECT",
    "RETRY_WEBHOOK_DELIVERY",
    "ROLES",
    "SUSPEND_REQUESTER",
    "VIEW_SLA_DASHBOARD",
    "deciders",
    "may_decide",
]


def deciders() -> QuerySet[Any]:
    """Active staff who may decide cases or appeals: whom a case may be assigned to."""
    perms = Permission.objects.filter(
        content_type__app_label="rights", codename__in=["decide_case", "decide_appeal"]
    )
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(
            Q(is_superuser=True) | Q(groups__permissions__in=perms) | Q(user_permissions__in=perms)
        )
        .distinct()
        .order_by("username")
    )
