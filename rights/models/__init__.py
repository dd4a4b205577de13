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
from rights.models.mail import STAFF_QUEUE_STATES, InboundMessage, MailState
from rights.models.partner import KeyScope, PartnerKey
from rights.models.transparency import SorSubmission, SubmissionOutcome
from rights.models.webhooks import WebhookDelivery, WebhookDeliveryState, WebhookEndpoint

__all__ = [
    "STAFF_QUEUE_STATES",
    "Audience",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditStream",
    "Channel",
    "ContentItem",
    "DomainVerification",
    "InboundMessage",
    "KeyScope",
    "LadderRung",
    "MailState",
    "Measure",
    "Notification",
    "Outlet",
    "OutletDomain",
    "PartnerKey",
    "RemovalAction",
    "RemovalEffect",
    "Requester",
    "RightsContact",
    "SorSubmission",
    "StatementOfReasons",
    "SubmissionOutcome",
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
