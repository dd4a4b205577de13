"""The staff console: one module per aggregate, registered on import (admin autodiscovery).

State never changes here by editing a field: state and status are read-only in every form, and
records that services own (cases, targets, suppressions, the audit trail) are view-only.
Every page and action checks a permission; the staff roles (groups `reviewer`, `lead`,
`admin`) hold them (rights/permissions.py names them; migration 0008 makes the groups).
"""

from django.contrib import admin

from rights.admin import (
    audit,
    cases,
    catalogue,
    dashboard,
    enforcement,
    evidence,
    landing,
    mail,
    partner_keys,
    requesters,
    transparency,
    webhooks,
)

# The console's front page leads with the review queue (reviewers land here after logging in).
admin.site.site_header = "Takedown console"
admin.site.site_title = "Takedown console"
admin.site.index_title = "Staff console"
admin.site.index_template = "rights/admin/index.html"

__all__ = [
    "audit",
    "cases",
    "catalogue",
    "dashboard",
    "enforcement",
    "evidence",
    "landing",
    "mail",
    "partner_keys",
    "requesters",
    "transparency",
    "webhooks",
]
