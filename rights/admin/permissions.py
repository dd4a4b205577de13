"""The staff roles' permissions, by name, as the console checks them.

The groups that hold them (`reviewer`, `lead`, `admin`) are made by migration 0008; the
permissions themselves are declared in the models' `Meta.permissions`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet

DECIDE_CASE = "rights.decide_case"
DECIDE_APPEAL = "rights.decide_appeal"
ASSIGN_CASE = "rights.assign_case"
RESTORE_CASE = "rights.restore_case"
VIEW_SLA_DASHBOARD = "rights.view_sla_dashboard"
SUSPEND_REQUESTER = "rights.suspend_requester"
ERASE_REQUESTER = "rights.erase_requester"
MANAGE_PARTNER_KEYS = "rights.manage_partner_keys"
RETRY_REMOVAL_EFFECT = "rights.retry_removaleffect"
RETRY_WEBHOOK_DELIVERY = "rights.retry_webhookdelivery"

ROLES = ("reviewer", "lead", "admin")


def may_decide(user: Any) -> bool:
    """Decides cases, appeals, or both."""
    return bool(user.has_perm(DECIDE_CASE) or user.has_perm(DECIDE_APPEAL))


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
