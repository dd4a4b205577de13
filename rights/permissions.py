"""The staff roles' permissions, by name: the one list every door checks (the console, the
`takedown` command through the review services).

The groups that hold them (`reviewer`, `lead`, `admin`) are made by migration 0008; the
permissions themselves are declared in the models' `Meta.permissions`. Imports nothing of the
service, so services and the console can both use it.
"""

from __future__ import annotations

from typing import Any

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
