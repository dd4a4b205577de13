from rights.models.audit import AuditCheckpoint, AuditEvent, AuditStream
from rights.models.cases import Channel, Requester, TakedownRequest, Target
from rights.models.catalogue import ContentItem, Outlet, OutletDomain
from rights.models.enforcement import Suppression, SuppressionKind

__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "AuditStream",
    "Channel",
    "ContentItem",
    "Outlet",
    "OutletDomain",
    "Requester",
    "Suppression",
    "SuppressionKind",
    "TakedownRequest",
    "Target",
]
