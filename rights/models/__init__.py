from rights.models.audit import AuditCheckpoint, AuditEvent, AuditStream
from rights.models.cases import Channel, Requester, TakedownRequest, Target
from rights.models.catalogue import ContentItem, Outlet, OutletDomain, RightsContact
from rights.models.enforcement import (
    Audience,
    LadderRung,
    Notification,
    RemovalAction,
    RemovalEffect,
    Suppression,
    SuppressionKind,
    SweeperRun,
    Transport,
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
    "RightsContact",
    "Suppression",
    "SuppressionKind",
    "SweeperRun",
    "TakedownRequest",
    "Target",
    "Transport",
]
