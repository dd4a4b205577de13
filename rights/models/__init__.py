from rights.models.audit import AuditCheckpoint, AuditEvent, AuditStream
from rights.models.cases import (
    Channel,
    Measure,
    Requester,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.models.catalogue import (
    ContentItem,
    DomainVerification,
    Outlet,
    OutletDomain,
    RightsContact,
)
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
from rights.models.partner import KeyScope, PartnerKey
from rights.models.webhooks import WebhookDelivery, WebhookDeliveryState, WebhookEndpoint

__all__ = [
    "Audience",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditStream",
    "Channel",
    "ContentItem",
    "DomainVerification",
    "KeyScope",
    "LadderRung",
    "Measure",
    "Notification",
    "Outlet",
    "OutletDomain",
    "PartnerKey",
    "RemovalAction",
    "RemovalEffect",
    "Requester",
    "RightsContact",
    "StatementOfReasons",
    "Suppression",
    "SuppressionKind",
    "SweeperRun",
    "TakedownRequest",
    "Target",
    "Transport",
    "WebhookDelivery",
    "WebhookDeliveryState",
    "WebhookEndpoint",
]
