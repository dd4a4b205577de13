"""The mailbox's services: store a message first, then read it, and the staff's two answers to
one that could not be read.

`message_store` writes the raw bytes under the message's unique key and nothing else, so that
whatever reading makes of it later, nothing is lost: the MTA's pipe (`mail_receive`) and the IMAP
reader (`mail_fetch`) let go of a message only once this has committed. `message_process` then
reads it, in its own transaction, and leaves it in exactly one state (rights.models.MailState):

- an automatic message (auto-reply, out-of-office, bounce, list mail) is `ignored`: never
  answered, never a case;
- a reply to one of our emails, or one quoting a case's reference in its subject, is `threaded`
  into that case (recorded there for staff), never a second case; but only from the case's
  requester (anyone else's waits for staff), and articles it names that the case does not hold
  are a new request, opened as its own case;
- one that names an article we publish (our copy or its primary source, in any everyday
  spelling) goes to intake (`takedown_submit`, channel email, the clock starting at receipt,
  when the message was stored, however late it is read):
  `opened`, answered from the outbox with the reference, deadline and status link;
- one that names none is `answered` once with how to name the article and the request form,
  unless it answers one of our help replies (`ignored`, a loop), or the sender is over their
  rate (MAIL_RATE_PER_SENDER, +tags one sender, verified and unverified counted apart), our
  receiver found DMARC failing for its From: domain, or the mailbox has sent
  MAIL_ANSWERS_PER_HOUR answers already (`limited`: kept, not answered). Over the sender's rate
  a message naming an article still opens its case (the clock is the promise): only the
  acknowledgement is withheld;
- anything else (cut at the size cap, unreadable, no sender, refused by intake) waits for staff
  (`needs_staff`), who make it into a case or dismiss it, each step audited.

The audit trail records each message's steps on its own stream (`mail:<id>`), by id and state
only: addresses, subjects and words stay in the message's row.
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from rights import audit, clock
from rights.errors import DomainError
from rights.mail.mailbox import rate_window
from rights.mail.parse import (
    ParsedMail,
    header_message_id,
    legacy_storage_key,
    parse_message,
    storage_key,
)
from rights.models import (
    Audience,
    Channel,
    InboundMessage,
    MailState,
    Notification,
    TakedownRequest,
)
from rights.normalise import NormaliseError, has_forbidden_characters, normalise_url
from rights.services.intake import REFERENCE_ALPHABET, Submission, takedown_submit
from rights.services.intake_checks import canonical_email
from rights.services.notifications import (
    OUR_BARE_ID,
    case_of_message_id,
    is_our_message_id,
    notify_inbound,
)
from rights.services.trust import resolve_urls

logger = logging.getLogger(__name__)

SYSTEM = "system:mail"
REFERENCE_IN_TEXT = re.compile(rf"\bTD-[{REFERENCE_ALPHABET}]{{7}}\b")
MAX_NAME = 200
# Distinct URLs of one message looked up in the catalogue; the rest are kept, not resolved.
MAX_URLS_RESOLVED = 200
# States a message leaves the staff queue in: reading it again changes nothing.
READ_STATES = frozenset(set(MailState.values) - {MailState.STORED})


@dataclass(frozen=True)
class Stored:
    message: InboundMessage
    created: bool


def message_store(*, raw: bytes, source: str, size: int | None = None) -> Stored:
    """Keep a message's bytes (cut at MAIL_MAX_BYTES, and flagged so) under its unique key; the
    same message again returns the first row. Parses only the headers, for the key."""
    cap = settings.MAIL_MAX_BYTES
    full_size = max(size or 0, len(raw))
    kept = raw[:cap]
    try:
        message_id = header_message_id(kept)
    except Exception:  # headers no parser can read still get stored, under their digest
        message_id = ""
    key = storage_key(raw, message_id)
    erased = InboundMessage.objects.filter(key=f"erased:{audit.text_digest(key)}").first()
    if erased is not None:  # seen, and its sender's data erased since: not taken in again
        return Stored(message=erased, created=False)
    if message_id:
        # Stored under the key's earlier form (the Message-ID alone): the same message if its
        # content is the same, another one reusing the id if not.
        earlier = InboundMessage.objects.filter(key=legacy_storage_key(message_id)).first()
        if earlier is not None and storage_key(bytes(earlier.raw), message_id) == key:
            return Stored(message=earlier, created=False)
    try:
        with transaction.atomic():
            message, created = InboundMessage.objects.get_or_create(
                key=key,
                defaults={
                    "source": source,
                    "raw": kept,
                    "size": full_size,
                    "truncated": full_size > cap,
                    "received_at": clock.now(),
                    "message_id": message_id[:998],
                },
            )
            if created:
                audit.append(
                    stream=message.audit_stream(),
                    actor=SYSTEM,
                    action="mail.stored",
                    data={"source": source, "size": full_size, "truncated": full_size > cap},
                )
    except IntegrityError:
        # The same message, stored by a concurrent delivery that committed first.
        return Stored(message=InboundMessage.objects.get(key=key), created=False)
    return Stored(message=message, created=created)


def _printable(text: str, limit: int) -> str:
    kept = "".join(ch for ch in text if not has_forbidden_characters(ch))
    return kept[:limit].strip()


def _display_name(parsed: ParsedMail) -> str:
    """The requester's name: the From header's display name, unless it is made to look like an
    address (`"desk@outlet.example" <someone@elsewhere>`), which staff would read as the sender;
    then, as when there is none, the address's local part."""
    name = " ".join(_printable(parsed.sender_name, MAX_NAME * 2).split())[:MAX_NAME]
    if "@" in name or "\uff20" in name or "\ufe6b" in name:
        name = ""
    return name or parsed.sender.split("@", 1)[0][:MAX_NAME]


def _articles(urls: tuple[str, ...]) -> list[str]:
    """The URLs that name an article we publish, in the order written: of the first
    MAX_URLS_RESOLVED distinct URLs only, so that a message of a hundred thousand links costs
    no more to read than one of two hundred."""
    normalised: dict[str, None] = {}
    for url in urls:
        if len(normalised) >= MAX_URLS_RESOLVED:
            break
        try:
            normalised.setdefault(normalise_url(url), None)
        except NormaliseError:
            continue
    resolved = resolve_urls(list(normalised))
    return [url for url in normalised if resolved.get(url) is not None]


def _thread(parsed: ParsedMail) -> tuple[TakedownRequest | None, str]:
    """The case this message answers, and how it was found: a reply to one of our emails, or
    a case reference in the subject."""
    for message_id in parsed.replies_to:
        case = case_of_message_id(message_id)
        if case is not None:
            return case, "reply"
    for reference in REFERENCE_IN_TEXT.findall(parsed.subject.upper()):
        case = TakedownRequest.objects.filter(reference=reference).first()
        if case is not None:
            return case, "subject"
    return None, ""


def _our_own(parsed: ParsedMail) -> bool:
    ours = {
        canonical_email(parseaddr(str(address))[1])
        for address in (settings.TAKEDOWN_MAILBOX, settings.DEFAULT_FROM_EMAIL)
    }
    return parsed.sender in ours or is_our_message_id(parsed.message_id)


def _sender_base(sender: str) -> tuple[str, str]:
    """The address's local part without its `+tag`, and its domain: anna+1@ and anna+2@ are
    one sender to the rate limit."""
    local, _, domain = sender.rpartition("@")
    return local.split("+", 1)[0], domain


def _over_limit(message: InboundMessage, sender: str) -> bool:
    """Whether the sender has had their rate's worth of messages read already. Verified and
    unverified messages count apart: mail anyone could forge in a verified sender's name
    does not use up what the sender proved to be them may send."""
    count, window = rate_window(settings.MAIL_RATE_PER_SENDER)
    since = message.received_at - timedelta(seconds=window)
    local, domain = _sender_base(sender)
    earlier = (
        InboundMessage.objects.filter(
            Q(sender=f"{local}@{domain}")
            | Q(sender__startswith=f"{local}+", sender__endswith=f"@{domain}"),
            received_at__gte=since,
            sender_verified=message.sender_verified,
        )
        .exclude(pk=message.pk)
        .exclude(state__in=[MailState.STORED, MailState.IGNORED])
    )
    return earlier.count() >= count


def _answers_over_cap(message: InboundMessage) -> bool:
    """Whether the mailbox has sent MAIL_ANSWERS_PER_HOUR automatic answers in the past hour,
    from every sender together."""
    since = message.received_at - timedelta(hours=1)
    answered = InboundMessage.objects.filter(state=MailState.ANSWERED, received_at__gte=since)
    return answered.count() >= settings.MAIL_ANSWERS_PER_HOUR


def _answers_help(parsed: ParsedMail) -> bool:
    """The message replies to one of our own help answers (no case named in its id): an
    autoresponder answering our answer, or a person who still named no article."""
    return any(OUR_BARE_ID.match(message_id) for message_id in parsed.replies_to)


def _reused_message_id(message: InboundMessage) -> bool:
    """Another message, with other content, came under this one's Message-ID."""
    if not message.message_id:
        return False
    return (
        InboundMessage.objects.filter(message_id=message.message_id).exclude(pk=message.pk).exists()
    )


def _withhold_answers(case: TakedownRequest) -> None:
    """Cancel the requester's messages intake just put in the outbox for a new case: the case
    stands (its clock is the promise), only the answer is withheld."""
    Notification.objects.filter(
        case=case, audience=Audience.REQUESTER, sent_at__isnull=True
    ).update(sent_at=clock.now(), lease_until=None, last_error="withheld: sender over rate limit")


def _settle(
    message: InboundMessage,
    state: str,
    *,
    reason: str = "",
    case: TakedownRequest | None = None,
    data: dict[str, object] | None = None,
    actor: str = SYSTEM,
    action: str = "mail.read",
) -> InboundMessage:
    message.state = state
    message.reason = reason[:64]
    message.case = case
    message.processed_at = clock.now()
    message.save(update_fields=["state", "reason", "case", "processed_at"])
    audit.append(
        stream=message.audit_stream(),
        actor=actor,
        action=action,
        data={
            "state": state,
            "reason": reason or None,
            "case": case.reference if case is not None else None,
            **(data or {}),
        },
    )
    return message


def message_process(*, message_id: int) -> str:
    """Read one stored message and act on it; returns the state it is left in. Safe to call
    twice: a message already read is left as it is."""
    try:
        with transaction.atomic():
            message = (
                InboundMessage.objects.select_for_update(skip_locked=True)
                .filter(pk=message_id)
                .first()
            )
            if message is None:
                return "busy"
            if message.state in READ_STATES:
                return message.state
            return _read(message).state
    except Exception as exc:  # whatever went wrong, the message stays, for staff
        # The error's own words may quote the message (a value the database refused): only its
        # type and where it happened are logged, never the message's text.
        logger.error(
            "inbound message %s could not be read (%s)\n%s",
            message_id,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        with transaction.atomic():
            message = InboundMessage.objects.select_for_update().get(pk=message_id)
            if message.state == MailState.STORED:
                _settle(message, MailState.NEEDS_STAFF, reason=f"error:{type(exc).__name__}")
            return message.state


def _read(message: InboundMessage) -> InboundMessage:
    if message.truncated:
        return _settle(message, MailState.NEEDS_STAFF, reason="over_size_cap")
    raw = bytes(message.raw)
    try:
        parsed = parse_message(raw, authserv_id=settings.MAIL_AUTHSERV_ID)
    except Exception as exc:  # broken beyond what the parser tolerates
        return _settle(message, MailState.NEEDS_STAFF, reason=f"unreadable:{type(exc).__name__}")
    message.sender = parsed.sender
    message.sender_verified = parsed.check.verified
    message.subject = _printable(parsed.subject, 300)
    message.urls = list(parsed.urls[:200])
    message.save(update_fields=["sender", "sender_verified", "subject", "urls"])
    record: dict[str, object] = {
        "verified": parsed.check.verified,
        "verified_by": parsed.check.method or None,
        "urls": len(parsed.urls),
    }
    # Another message came first under this Message-ID: this one is read as itself, and the
    # reuse is flagged on it for staff.
    flag = "message_id_reused" if _reused_message_id(message) else ""
    if flag:
        record[flag] = True
    if parsed.automatic:
        return _settle(message, MailState.IGNORED, reason=parsed.automatic, data=record)
    if _our_own(parsed):
        # One of our own messages come back (a forwarding loop, a misdirected copy): answering
        # it would answer ourselves.
        return _settle(message, MailState.IGNORED, reason="our_own", data=record)
    if not parsed.sender:
        return _settle(message, MailState.NEEDS_STAFF, reason="no_sender", data=record)
    # The rate limit stops us being made to send mail: over it, a message is still read and
    # still opens its case (the clock is the promise); only our answer is withheld.
    limited = _over_limit(message, parsed.sender)
    articles = _articles(parsed.urls)
    case, how = _thread(parsed)
    if case is not None:
        requester = canonical_email(case.requester.email) if case.requester.email else None
        if requester != parsed.sender:
            # Someone other than the case's requester: never attached to their case unseen.
            return _settle(message, MailState.NEEDS_STAFF, reason="thread_stranger", data=record)
        targeted = set(case.targets.values_list("content_item_id", flat=True))
        resolved = resolve_urls(articles)
        articles = [u for u in articles if getattr(resolved.get(u), "pk", None) not in targeted]
        if not articles:
            audit.append(
                stream=case.audit_stream(),
                actor=SYSTEM,
                action="case.mail_threaded",
                data={"message": message.pk, "by": how, "verified": parsed.check.verified},
            )
            return _settle(message, MailState.THREADED, reason=how, case=case, data=record)
        # The requester names more articles in their reply: a new request, its own case.
        record["replying_to"] = case.reference
    if not articles and parsed.defects and not parsed.text.strip():
        # Broken MIME that left no words to read: a person must look, not an automatic reply.
        return _settle(message, MailState.NEEDS_STAFF, reason="broken_mime", data=record)
    if not articles:
        # No automatic answer to a loop, to a sender over their rate, to mail our receiver
        # found forged, nor past the mailbox's cap on answers.
        if _answers_help(parsed):
            return _settle(message, MailState.IGNORED, reason="auto_loop", data=record)
        if limited:
            return _settle(message, MailState.LIMITED, reason="sender_rate", data=record)
        if parsed.check.failed:
            return _settle(message, MailState.LIMITED, reason="dmarc_fail", data=record)
        if _answers_over_cap(message):
            return _settle(message, MailState.LIMITED, reason="answer_cap", data=record)
        message = _settle(message, MailState.ANSWERED, reason="no_article", data=record)
        notify_inbound(inbound=message, kind="mail_help")
        return message
    explanation = _printable(
        f"{parsed.subject}\n\n{parsed.text}", settings.TAKEDOWN_MAX_EXPLANATION
    )
    submission = Submission(
        channel=Channel.EMAIL,
        email=parsed.sender,
        name=_display_name(parsed),
        urls=articles[: settings.TAKEDOWN_MAX_URLS],
        explanation=explanation,
        external_id=message.key,
        email_verified=parsed.check.verified,
        received_at=message.received_at,
    )
    try:
        with transaction.atomic():
            result = takedown_submit(submission=submission)
            if limited and result.created:
                _withhold_answers(result.case)
    except DomainError as exc:
        return _settle(message, MailState.NEEDS_STAFF, reason=f"refused:{exc.code}", data=record)
    reason = "sender_rate" if limited else flag
    return _settle(
        message,
        MailState.OPENED,
        reason=reason,
        case=result.case,
        data={**record, "articles": len(articles), "answered": not limited},
    )


def messages_pending(*, older_than: float = 30.0, limit: int = 100) -> list[int]:
    """Messages stored but not read for a while (their reader died after storing them)."""
    before = clock.now() - timedelta(seconds=older_than)
    return list(
        InboundMessage.objects.filter(state=MailState.STORED, received_at__lt=before)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def _staff_locked(message: InboundMessage) -> InboundMessage:
    locked = InboundMessage.objects.select_for_update().get(pk=message.pk)
    if locked.state not in {MailState.NEEDS_STAFF, MailState.STORED, MailState.LIMITED}:
        raise DomainError(
            f"{locked} is already dealt with ({locked.get_state_display().lower()})",
            code="mail_dealt_with",
        )
    return locked


def message_dismiss(*, message: InboundMessage, user_id: int) -> InboundMessage:
    """Staff set a message aside for good: nothing is sent, the message stays."""
    with transaction.atomic():
        locked = _staff_locked(message)
        return _settle(
            locked,
            MailState.DISMISSED,
            reason="staff",
            actor=f"staff:{user_id}",
            action="mail.dismissed",
        )


def message_make_case(
    *, message: InboundMessage, user_id: int, email: str, name: str, urls: list[str]
) -> TakedownRequest:
    """Staff make a message that could not be read into a case, naming the URLs it asks
    about: intake as for any email (the sender's address proved only if our receiver proved
    it), the clock starting now. Raises DomainError (intake's) naming what is wrong."""
    with transaction.atomic():
        locked = _staff_locked(message)
        result = takedown_submit(
            submission=Submission(
                channel=Channel.EMAIL,
                email=email,
                name=name,
                urls=urls,
                external_id=locked.key,
                email_verified=locked.sender_verified and email.lower() == locked.sender,
                actor=f"staff:{user_id}",
            )
        )
        _settle(
            locked,
            MailState.CASE_BY_STAFF,
            reason="staff",
            case=result.case,
            actor=f"staff:{user_id}",
            action="mail.case_made",
        )
        return result.case


def messages_erase(*, email: str, case_ids: list[int]) -> int:
    """Erase what the mailbox kept of a requester (their erasure, rights.services.erasure):
    the raw bytes, sender, subject and URLs of every message from their address or about their
    cases; the key becomes a digest (still unique, so a redelivery is still recognised as
    seen, no longer readable). Answers not yet sent are cancelled. Returns how many."""
    messages = list(
        InboundMessage.objects.select_for_update()
        .filter(Q(sender=email) | Q(case_id__in=case_ids))
        .exclude(key__startswith="erased:")
        .order_by("pk")
    )
    for message in messages:
        message.key = f"erased:{audit.text_digest(message.key)}"
        message.raw = b""
        message.sender = message.subject = message.message_id = ""
        message.urls = []
        message.save(update_fields=["key", "raw", "sender", "subject", "message_id", "urls"])
        audit.append(stream=message.audit_stream(), actor=SYSTEM, action="mail.erased", data={})
    Notification.objects.filter(inbound__in=messages, sent_at__isnull=True).update(
        sent_at=clock.now(), lease_until=None, last_error="cancelled: requester erased"
    )
    return len(messages)


def message_raw_viewed(*, message: InboundMessage, user_id: int) -> None:
    """A member of staff read a message's raw source: recorded, as any look at personal data."""
    audit.append(
        stream=message.audit_stream(),
        actor=f"staff:{user_id}",
        action="mail.raw_viewed",
        data={},
    )
