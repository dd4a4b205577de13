"""The Celery tasks' names, once: the tasks, the publishers, the routes and the beat schedule
all use these. Explicit, stable names, so that messages survive a rename of the Python code.
Imports nothing, so config/settings.py can use it."""

from enum import StrEnum


class TaskName(StrEnum):
    SWEEP = "rights.sweep"
    CASE_ADVANCE = "rights.case_advance"
    TARGET_ENFORCE = "rights.target_enforce"
    NOTIFICATION_SEND = "rights.notification_send"
    AUDIT_CHECKPOINT = "rights.audit_checkpoint"
    PING = "rights.ping"
    REQUESTERS_RETENTION = "rights.requesters_retention"
    DOMAINS_RECHECK = "rights.domains_recheck"
    MAIL_PROCESS = "rights.mail_process"
    MAIL_PENDING = "rights.mail_pending"
    MAIL_FETCH = "rights.mail_fetch"
