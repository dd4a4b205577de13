from rights.models.audit import AuditCheckpoint, AuditEvent, AuditStream
from rights.models.cases import Channel, Requester, TakedownRequest, Target
from rights.models.catalogue import ContentItem, Outlet, OutletDomain
from rights.models.enforcement import (
    Audience,
    LadderRung,
    Notification,
    RemovalAction,
    RemovalEffect,
    Suppression,
    SuppressionKind,
    SweeperRun,
)

__all__ = [
    "Audience",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditStream",
    "Channel",
    "ContentItem",
    "LadderRung",
    "Notification",
    "Outlet",
    "OutletDomain",
    "RemovalAction",
    "RemovalEffect",
    "Requester",
    "Suppression",
    "SuppressionKind",
    "SweeperRun",
    "TakedownRequest",
    "Target",
]
