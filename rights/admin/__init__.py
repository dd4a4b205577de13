"""The staff console: one module per aggregate, registered on import (admin autodiscovery).

State never changes here by editing a field: state and status are read-only in every form, and
records that services own (cases, targets, suppressions, the audit trail) are view-only.
"""

from rights.admin import audit, cases, catalogue, enforcement

__all__ = ["audit", "cases", "catalogue", "enforcement"]
