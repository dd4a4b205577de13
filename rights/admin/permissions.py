"""Whom a case may be assigned to: the staff whose roles may decide. The permissions' names are
in rights.permissions, the one list every door checks."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet

__all__ = ["deciders"]


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
