"""Reading one message: who it is from, what it says, every URL it names, whether it answers
one of ours, and whether it is an automatic message that must never be answered.

The standard library reads the MIME (email.policy.default); HTML is turned into text by
Beautiful Soup with Python's own parser (nothing is fetched or run). A part in a charset Python
does not know is read as UTF-8 with replacement characters, never dropped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser

from bs4 import BeautifulSoup

from rights.mail.auth import SenderCheck, check_sender
from rights.normalise import has_forbidden_characters
from rights.services.intake_checks import canonical_email

# A URL written out: a scheme, or a bare www. host. It ends at white space, or at a character
# that cannot be in a URL written in running text; closing punctuation is trimmed after.
# Quotation marks of every language end it too (a URL in “quotes” or «guillemets»), and so do
# Japanese and Chinese script and punctuation, often written with no space after a URL.
URL_IN_TEXT = re.compile(
    r"""(?i)\b(?:https?://|www\.)[^\s<>"'`{}|\\^\x00-\x1f\x7f\u2018-\u201f\u00ab\u00bb\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]+"""
)
TRAILING = ".,;:!?*_~"
PAIRS = {")": "(", "]": "[", "}": "{"}
# No control characters (a NUL can be written to no text column): such an id is no id.
MESSAGE_ID = re.compile(r"<[^<>\s\x00-\x1f\x7f]{1,900}>")
# Headers that mark a message sent by a machine, not a person (RFC 3834, and common practice).
AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
MACHINE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
MAX_TEXT = 200_000  # characters of text read from one message; URLs are found within them
DIGEST_HEADERS = ("From", "To", "Cc", "Subject", "Date")
MAX_URL = 2048  # longer is no article's address (intake refuses it too)
# A longer Message-ID is keyed by its digest: the key (intake's external_id) stays within 255.
MAX_KEYED_ID = 200


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    sender: str  # the From: address, canonical (intake's spelling), or "" when there is none
    sender_name: str
    subject: str
    text: str
    urls: tuple[str, ...]
    replies_to: tuple[str, ...]  # Message-IDs in In-Reply-To and References, nearest first
    automatic: str  # why it is a machine's message ("auto_submitted", ...), or ""
    defects: int  # MIME defects the parser found and worked around
    check: SenderCheck = field(default_factory=lambda: SenderCheck(verified=False))


def header_message_id(raw: bytes) -> str:
    """The Message-ID from the headers alone, before the message is read (the storage key)."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    value = str(headers.get("Message-ID", "") or "")
    match = MESSAGE_ID.search(value)
    return match.group(0) if match else ""


def _content_digest(raw: bytes) -> str:
    """A digest of what makes a message this message, whichever way it was delivered: its
    From, To, Cc, Subject and Date, and its body, line endings made one. Headers a delivery
    path adds on top (Received, Delivered-To, X-...) change nothing, so the same message by
    pipe and by IMAP is one; two messages with one Message-ID but other words are two."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head + b"\n\n")
    digest = hashlib.sha256()
    for name in DIGEST_HEADERS:
        for value in headers.get_all(name) or []:
            text = " ".join(str(value).split())
            digest.update(f"{name}:{text}\n".encode("utf-8", "surrogateescape"))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()[:32]


def storage_key(raw: bytes, message_id: str) -> str:
    """The message's unique key: its Message-ID (a digest of it when very long) and a digest of
    its content (`_content_digest`), or a digest of its bytes when it has no Message-ID. The
    same message delivered twice has one key; another message reusing a Message-ID has its
    own."""
    if not message_id:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    content = _content_digest(raw)
    if len(message_id) <= MAX_KEYED_ID:
        return f"mid:{message_id}:{content}"
    mid = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    return f"mid-sha256:{mid}:{content}"


def legacy_storage_key(message_id: str) -> str:
    """The key a message with this Message-ID was stored under before the key held a digest of
    its content: a redelivery of such a message must still find its row."""
    if len(message_id) <= 250:
        return "mid:" + message_id
    return "mid-sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()


def _decoded(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = (part.get_content_charset() or "utf-8").lower()
    if charset in {"us-ascii", "ascii"}:
        charset = "utf-8"  # 8-bit text mislabelled as ASCII is nearly always UTF-8
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def html_text(html: str) -> tuple[str, list[str]]:
    """The words of an HTML part, and the links in it (href of every <a> and <area>)."""
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "head", "template", "noscript"]):
        hidden.decompose()
    hrefs = (str(tag.get("href")).strip() for tag in soup.find_all(["a", "area"], href=True))
    # A link with a control character (a NUL, say) names no article, and no text column can
    # hold it: dropped here, before anything is written.
    links = [href for href in hrefs if href and not has_forbidden_characters(href)]
    lines = (" ".join(line.split()) for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line), links


def _trim(url: str) -> str:
    """`url` without the punctuation that closes the sentence around it: trailing marks, and a
    closing bracket with no opening one in the URL. Linear: the brackets are counted once."""
    counts = {close: url.count(close) - url.count(PAIRS[close]) for close in PAIRS}
    end = len(url)
    while end:
        last = url[end - 1]
        if last in TRAILING:
            end -= 1
        elif last in PAIRS and counts[last] > 0:
            counts[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def urls_in_text(text: str) -> list[str]:
    """Every URL written in `text`, a bare www. host made an https URL."""
    found = []
    for match in URL_IN_TEXT.finditer(text):
        url = _trim(match.group(0))
        if url.lower().startswith("www."):
            # A bare host: "www." and at least one more label.
            if "." not in url[4:].split("/", 1)[0].strip("."):
                continue
            url = "https://" + url
        elif not url.split("//", 1)[1]:
            continue
        if len(url) <= MAX_URL and not has_forbidden_characters(url):
            found.append(url)
    return found


def _automatic(message: EmailMessage, sender: str) -> str:
    auto = str(message.get("Auto-Submitted", "") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if str(message.get("Precedence", "") or "").strip().lower() in BULK_PRECEDENCE:
        return "bulk_precedence"
    if message.get_content_type() == "multipart/report":
        return "delivery_report"
    if "Return-Path" in message and str(message["Return-Path"]).strip() in {"<>", ""}:
        return "null_return_path"
    if any(name in message for name in AUTOREPLY_HEADERS):
        return "autoreply_header"
    if sender and sender.split("@", 1)[0] in MACHINE_SENDERS:
        return "machine_sender"
    return ""


def _unescaped(text: str) -> str:
    """Header text as written: raw UTF-8 in a header (RFC 6532: `anna@müller.de`) reaches the
    parser as escaped bytes, made characters again here."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _sender(message: EmailMessage) -> tuple[str, str]:
    header = message.get("From")
    addresses = getattr(header, "addresses", ()) if header is not None else ()
    for address in addresses:
        email = canonical_email(_unescaped(address.addr_spec))
        if email:
            return email, _unescaped(str(address.display_name or ""))
    return "", ""


def parse_message(raw: bytes, *, authserv_id: str) -> ParsedMail:
    """Read a stored message. Raises only on a message that cannot be read at all."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    sender, sender_name = _sender(message)
    subject = " ".join(str(message.get("Subject", "") or "").split())
    plain: list[str] = []
    html: list[str] = []
    urls: list[str] = []
    budget = MAX_TEXT
    defects = 0
    for part in message.walk():
        defects += len(part.defects)
        if part.is_multipart() or part.get_content_maintype() != "text" or budget <= 0:
            continue
        text = _decoded(part)[:budget]
        budget -= len(text)
        if part.get_content_subtype() == "html":
            words, links = html_text(text)
            html.append(words)
            urls += links
            urls += urls_in_text(words)
        else:
            plain.append(text)
            urls += urls_in_text(text)
    urls += urls_in_text(subject)
    replies_to: list[str] = []
    for name in ("In-Reply-To", "References"):
        for value in message.get_all(name) or []:
            replies_to += MESSAGE_ID.findall(str(value))
    check = SenderCheck(verified=False)
    if sender:
        check = check_sender(
            message, from_domain=sender.rsplit("@", 1)[-1], authserv_id=authserv_id
        )
    return ParsedMail(
        message_id=header_message_id(raw),
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        text="\n\n".join(t.strip() for t in (plain or html) if t.strip()),
        urls=tuple(dict.fromkeys(urls)),
        replies_to=tuple(dict.fromkeys(reversed(replies_to))),
        automatic=_automatic(message, sender),
        defects=defects,
        check=check,
    )
