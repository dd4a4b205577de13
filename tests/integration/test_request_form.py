"""The owner's door at /request/: the form, its errors next to each field, nothing written until
the request is valid, one case per submission token, the honeypot, the same "check your email"
for every address, rate limits (429 with Retry-After, and recovery), CSRF and the Content
Security Policy."""

from __future__ import annotations

import html
import io
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from rights.models import (
    AuditEvent,
    ContentItem,
    Notification,
    Requester,
    TakedownRequest,
)
from rights.services.notifications import notification_send
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS, STATEMENTS_VERSION
from rights.states import CaseState
from tests.integration.test_settings import manage

pytestmark = pytest.mark.django_db

FORM = "/request/"
SENT = "/request/sent/"


def token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def valid(item: ContentItem, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "urls": item.public_url,
        "whole_domain": "",
        "basis": "copyright",
        "statements_copyright": list(REQUIRED_STATEMENTS["copyright"]),
        "explanation": "We own this article.",
        "name": "Ada Owner",
        "email": "ada@example.org",
        "organisation": "",
        "token": token(),
        "statements_version": STATEMENTS_VERSION,
        "leave_empty": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def counts() -> tuple[int, int, int, int]:
    return (
        TakedownRequest.objects.count(),
        Requester.objects.count(),
        AuditEvent.objects.count(),
        Notification.objects.count(),
    )


def text(response: Any) -> str:
    return " ".join(html.unescape(response.content.decode()).split())


def field_error(page: str, field_id: str) -> str:
    """The error shown next to one control (its `<id>-error` element)."""
    found = re.search(rf'id="{field_id}-error">(.*?)</div>', page, re.S)
    assert found, f"no error next to {field_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


# --- the page -------------------------------------------------------------------------------


def test_the_form_has_every_field_labelled_grouped_and_a_fresh_token(client: Client) -> None:
    response = client.get(FORM)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<h1") == 1
    assert '<html lang="en">' in page
    assert 'href="#main"' in page
    assert '<main id="main"' in page
    for control in ("id_urls", "id_whole_domain", "id_explanation", "id_name", "id_email"):
        assert f'<label class="label" for="{control}">' in page
    assert '<label class="label" for="id_organisation">' in page
    # Radios and checkboxes in fieldsets with legends; every basis explained.
    assert page.count("<fieldset") == 1 + len(REQUIRED_STATEMENTS)
    assert page.count("<legend") == page.count("<fieldset")
    for n in range(4):
        assert f'for="id_basis_{n}"' in page
        assert f'aria-describedby="id_basis_{n}-hint"' in page
    # The sworn statements in their exact, versioned words, grouped by basis (JavaScript off).
    plain = html.unescape(page)
    for key, wording in STATEMENTS.items():
        assert wording in plain, key
    assert f"version {STATEMENTS_VERSION}" in plain
    for basis, keys in REQUIRED_STATEMENTS.items():
        for n, key in enumerate(keys):
            assert f'id="id_statements_{basis}_{n}" name="statements_{basis}" value="{key}"' in page
    # The hidden submission token differs on every page, and a CSRF token is in the form.
    first = re.search(r'name="token" value="([^"]+)"', page)
    second = re.search(r'name="token" value="([^"]+)"', client.get(FORM).content.decode())
    assert first
    assert second
    assert first.group(1) != second.group(1)
    assert 'name="csrfmiddlewaretoken"' in page
    # The honeypot: hidden from view, from screen readers and from the keyboard.
    assert '<div class="hp" aria-hidden="true">' in page
    assert 'name="leave_empty" value="" tabindex="-1" autocomplete="off"' in page
    # No inline script or style: the policy allows neither.
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert "<style" not in page
    assert " style=" not in page
    assert response["Cache-Control"].startswith("max-age=0")


def test_the_article_link_prefills_the_form(client: Client, item: ContentItem) -> None:
    notice = client.get(item.get_absolute_url()).content.decode()
    link = re.search(r'href="([^"]+)" data-testid="request-removal"', notice)
    assert link is not None
    href = html.unescape(link.group(1))
    assert href == f"{FORM}?{urlencode({'url': item.public_url})}"
    page = client.get(href).content.decode()
    assert re.search(r"<textarea[^>]*id=\"id_urls\"[^>]*>\s*" + re.escape(item.public_url), page)


def test_a_valid_request_waits_for_confirmation_and_says_check_your_email(
    client: Client, item: ContentItem
) -> None:
    data = valid(item)
    response = client.post(FORM, data)
    assert response.status_code == 302
    assert response["Location"] == SENT
    case = TakedownRequest.objects.get()
    assert case.state == CaseState.AWAITING_CONFIRMATION
    assert case.channel == "web"
    assert case.source_key == f"web::{data['token']}"
    assert case.clock_started_at is None
    assert list(case.statements) == list(REQUIRED_STATEMENTS["copyright"])
    assert case.statements_version == STATEMENTS_VERSION
    assert case.requester.email == "ada@example.org"
    assert case.requester.email_verified_at is None

    sent = client.get(SENT)
    assert sent.status_code == 200
    page = text(sent)
    assert "Check your email" in page
    assert case.reference not in page
    assert "ada@example.org" not in page
    # The confirmation mail carries the link (the outbox sends it).
    for notification in Notification.objects.filter(case=case):
        notification_send(notification_id=notification.pk)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.org"]
    assert "/confirm/" in mail.outbox[0].body


def test_only_the_chosen_basis_statements_count(client: Client, item: ContentItem) -> None:
    # Without JavaScript every basis's boxes are on the page: ticking another basis's boxes
    # swears nothing for this request.
    data = valid(item, basis="privacy", statements_privacy=list(REQUIRED_STATEMENTS["privacy"]))
    data["statements_copyright"] = ["owner_or_agent"]
    assert client.post(FORM, data).status_code == 302
    assert list(TakedownRequest.objects.get().statements) == list(REQUIRED_STATEMENTS["privacy"])


# --- bad input at each field ---------------------------------------------------------------

LONG_URL = "https://www.telegraph.co.uk/news/" + "a" * 3000
BAD_INPUT: list[tuple[str, dict[str, Any], str, str]] = [
    ("no url", {"urls": ""}, "id_urls", "Enter the web address of at least one article"),
    ("blank lines only", {"urls": "\n \n"}, "id_urls", "Enter the web address"),
    ("bad scheme", {"urls": "ftp://x.example/a"}, "id_urls", "line 1 (ftp://x.example/a) must"),
    (
        "second line bad",
        {"urls": "https://ok.example/a\n\nnot a url"},
        "id_urls",
        "The address on line 3 (not a url)",
    ),
    ("too long", {"urls": LONG_URL}, "id_urls", "is longer than 2048 characters"),
    ("control", {"urls": "https://x.example/\x01a"}, "id_urls", "control"),
    (
        "101 urls",
        {"urls": "\n".join(f"https://x.example/{n}" for n in range(101))},
        "id_urls",
        "names 101 URLs; at most 100",
    ),
    ("public suffix", {"urls": "", "whole_domain": "co.uk"}, "id_whole_domain", "public suffix"),
    ("not a domain", {"urls": "", "whole_domain": "a/b"}, "id_whole_domain", "must be a domain"),
    (
        "nothing from there",
        {"urls": "", "whole_domain": "example.org"},
        "id_whole_domain",
        "Nothing republished here comes from example.org",
    ),
    ("no basis", {"basis": None}, "basis", "Choose the legal basis"),
    ("unknown basis", {"basis": "piracy"}, "basis", "Choose the legal basis"),
    ("no statements", {"statements_copyright": None}, "statements", "tick every one"),
    (
        "one statement short",
        {"statements_copyright": ["owner_or_agent", "good_faith"]},
        "statements",
        "tick every one",
    ),
    (
        "unknown statement",
        {"statements_copyright": [*REQUIRED_STATEMENTS["copyright"], "i_promise"]},
        "statements",
        "Tick only the statements shown",
    ),
    ("old wording", {"statements_version": "1999-01"}, "statements", "wording"),
    ("explanation long", {"explanation": "x" * 10_001}, "id_explanation", "is too long"),
    ("explanation NUL", {"explanation": "a\x00b"}, "id_explanation", "null character"),
    ("explanation bidi", {"explanation": "a\u202eb"}, "id_explanation", "control"),
    ("no name", {"name": "  "}, "id_name", "Enter your name"),
    ("name long", {"name": "n" * 201}, "id_name", "is too long: 201 characters"),
    ("name newline", {"name": "Ada\nOwner"}, "id_name", "control"),
    ("name NUL", {"name": "Ada\x00"}, "id_name", "null character"),
    ("no email", {"email": ""}, "id_email", "Enter your email address"),
    ("bad email", {"email": "not-an-email"}, "id_email", "correct format"),
    ("huge email", {"email": "a" * 5000 + "@example.org"}, "id_email", "far too long"),
    ("org long", {"organisation": "o" * 201}, "id_organisation", "is too long"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input_is_shown_next_to_its_field_and_writes_nothing(
    client: Client, item: ContentItem, overrides: dict[str, Any], field: str, message: str
) -> None:
    before = counts()
    data = valid(item, **overrides)
    response = client.post(FORM, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert counts() == before
    # Next to the field...
    error_id = {"basis": "basis", "statements": "statements"}.get(field, field)
    assert message in field_error(page, error_id)
    # ...in the summary at the top, linking to it...
    summary = page[: page.index("<h1")]
    anchor = {"basis": "id_basis_0", "statements": "id_statements_copyright_0"}.get(field, field)
    assert f'href="#{anchor}"' in summary
    assert 'role="alert"' in summary
    assert "data-focus-on-load" in summary
    assert response.context["form"].summary()
    assert "<title>Error:" in page
    # ...and marked on the control.
    if field.startswith("id_"):
        control = re.search(rf'<(input|textarea)[^>]*id="{field}"[^>]*>', page)
        assert control is not None
        assert 'aria-invalid="true"' in control.group(0)
        assert f"{field}-error" in control.group(0)  # aria-describedby
    # Everything typed is kept (the name, the URLs, the ticked boxes, the token).
    if field != "id_name" and "\x00" not in str(data["name"]):
        assert f'value="{html.escape(str(data["name"]), quote=True)}"' in page
    assert f'name="token" value="{data["token"]}"' in page


def test_every_error_at_once_and_values_kept(client: Client, item: ContentItem) -> None:
    data = valid(item, urls="htp://x\nhttps://ok.example/a", name="", email="bad", basis=None)
    data["organisation"] = "Org & Co <Ltd>"
    response = client.post(FORM, data)
    page = response.content.decode()
    summary = page[: page.index("<h1")]
    for anchor in ("id_urls", "id_basis_0", "id_name", "id_email"):
        assert f'href="#{anchor}"' in summary
    assert "https://ok.example/a</textarea>" in page
    assert 'value="Org &amp; Co &lt;Ltd&gt;"' in page
    assert 'value="bad"' in page


def test_a_missing_or_mangled_token_is_a_clear_message_and_a_new_token(
    client: Client, item: ContentItem
) -> None:
    before = counts()
    fresh = ""
    for bad in (None, "", "short", "x" * 65, "bad token with spaces and more than 32 chars"):
        data = valid(item, token=bad)
        response = client.post(FORM, data)
        assert response.status_code == 200
        assert "This form was incomplete when it reached us" in text(response)
        found = re.search(r'name="token" value="([^"]+)"', response.content.decode())
        assert found is not None
        fresh = found.group(1)
        assert len(fresh) >= 32
        assert fresh != bad
    assert counts() == before
    # Sent again as it came back (with its new token), the request is made.
    again = valid(item, token=fresh)
    assert client.post(FORM, again).status_code == 302
    assert TakedownRequest.objects.count() == 1


# --- no input gives a 500 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"name=%FF%FE&email=%C3%28&urls=%80%81&token=" + b"a" * 40,
        b"\xff\xfe\x00garbage=\xc3\x28&&&==&",
        b"urls=" + b"%00" * 1000 + b"&basis[]=x&basis=copyright&basis=privacy",
        b"&".join(b"f%d=1" % n for n in range(1200)),  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
        b"explanation=" + b"x" * (3 * 1024 * 1024),  # over DATA_UPLOAD_MAX_MEMORY_SIZE
        b"",
    ],
    ids=["non-utf8", "binary", "nul-and-lists", "too-many-fields", "too-big", "empty"],
)
def test_no_input_gives_a_server_error(client: Client, item: ContentItem, body: bytes) -> None:
    before = counts()
    response = client.post(FORM, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 400)
    assert counts() == before


def form_in(charset: str) -> tuple[bytes, str]:
    """A form body in `charset`, as a hostile or broken client sends it."""
    body = "urls=https://www.telegraph.co.uk/news/x/&name=Ada+Owner&email=ada@example.org"
    return body.encode(charset), f"application/x-www-form-urlencoded; charset={charset}"


@contextmanager
def console_log() -> Iterator[io.StringIO]:
    """What the configured console handler (and its filter) writes, for Django's loggers."""
    handler = next(h for h in logging.getLogger("django").handlers if h.filters)
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    # Swapped under the handler's lock without flushing the stream it had.
    with handler.lock:  # type: ignore[union-attr]
        previous, handler.stream = handler.stream, out
    try:
        yield out
    finally:
        with handler.lock:  # type: ignore[union-attr]
            handler.stream = previous


def unreadable_is_a_clear_400(client: Client, path: str, charset: str) -> Any:
    """POST a body in `charset` to `path`: our own 400 page, and one line in the log."""
    body, content_type = form_in(charset)
    with console_log() as log:
        response = client.generic("POST", path, body, content_type=content_type)
    assert response.status_code == 400
    assert "We could not read what your browser sent" in text(response)
    assert "Content-Security-Policy" in response
    written = log.getvalue()
    assert "must be UTF-8 encoded" in written  # what, and where, in one line
    assert "Traceback" not in written
    return response


@pytest.mark.parametrize("charset", ["utf-16", "utf-7", "latin-1"])
@pytest.mark.parametrize("csrf", [False, True], ids=["view", "csrf-check"])
def test_a_form_in_another_encoding_than_utf8_is_a_clear_400(
    item: ContentItem, charset: str, csrf: bool
) -> None:
    # Django's own 400 page checks the CSRF token again, reading the body that failed the
    # first time: a 500. Ours reads nothing.
    client = Client(enforce_csrf_checks=csrf)
    client.get(FORM)  # the CSRF cookie, as a browser has it
    before = counts()
    response = unreadable_is_a_clear_400(client, FORM, charset)
    assert "Referrer-Policy" in response
    assert counts() == before


def test_a_file_instead_of_the_urls_is_no_urls(client: Client, item: ContentItem) -> None:
    response = client.post(FORM, {**valid(item), "urls": SimpleUploadedFile("a.txt", b"x")})
    assert response.status_code == 200
    assert "Enter the web address" in text(response)
    assert TakedownRequest.objects.count() == 0


# --- one case per submission ---------------------------------------------------------------


def test_a_double_submitted_form_makes_one_case(client: Client, item: ContentItem) -> None:
    data = valid(item)
    first = client.post(FORM, data)
    second = client.post(FORM, data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == SENT
    assert TakedownRequest.objects.count() == 1
    assert Notification.objects.filter(kind="confirm").count() == 1


def test_a_token_reused_with_different_details_is_explained_and_writes_nothing(
    client: Client, item: ContentItem
) -> None:
    data = valid(item)
    assert client.post(FORM, data).status_code == 302
    before = counts()
    changed = {**data, "explanation": "Something else entirely."}
    response = client.post(FORM, changed)
    assert response.status_code == 200
    assert "You have already sent this form with different details" in text(response)
    assert counts() == before
    fresh = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert fresh is not None
    assert fresh.group(1) != data["token"]
    assert "Something else entirely." in response.content.decode()  # kept
    # Sent again as it came back: a second request.
    assert client.post(FORM, {**changed, "token": fresh.group(1)}).status_code == 302
    assert TakedownRequest.objects.count() == 2


# --- abuse ---------------------------------------------------------------------------------


def test_the_honeypot_sees_check_your_email_and_nothing_is_written(
    client: Client, item: ContentItem
) -> None:
    before = counts()
    response = client.post(FORM, valid(item, leave_empty="http://spam.example"))
    assert response.status_code == 302
    assert response["Location"] == SENT
    assert counts() == before


def _sent_page(client: Client, item: ContentItem, email: str) -> str:
    response = client.post(FORM, valid(item, email=email), follow=True)
    assert response.redirect_chain == [(SENT, 302)]
    page = response.content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


def test_known_unknown_and_suspended_addresses_see_the_same_page(
    client: Client, item: ContentItem
) -> None:
    Requester.objects.create(email="known@example.org", name="Known")
    Requester.objects.create(
        email="suspended@example.org", name="Suspended", suspended_at=timezone.now()
    )
    pages = {
        email: _sent_page(client, item, email)
        for email in ("new@example.org", "known@example.org", "suspended@example.org")
    }
    assert len(set(pages.values())) == 1
    for email, page in pages.items():
        assert email not in page
    for case in TakedownRequest.objects.all():
        assert case.reference not in pages["new@example.org"]
    # Only the mail to the suspended address says why.
    suspended = TakedownRequest.objects.get(requester__email="suspended@example.org")
    assert suspended.state == CaseState.REJECTED
    assert Notification.objects.filter(case=suspended, kind="suspended").exists()


def test_csrf_is_required(item: ContentItem) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(FORM, valid(item))
    assert response.status_code == 403
    assert "Your form could not be sent" in text(response)
    assert TakedownRequest.objects.count() == 0
    assert "Content-Security-Policy" in response


def test_the_address_never_reaches_a_url(client: Client, item: ContentItem) -> None:
    response = client.post(FORM, valid(item, email="who@example.org"))
    assert "@" not in response["Location"]
    page = client.get(FORM).content.decode()
    assert re.search(r'<form method="post" action="/request/"', page)


# --- rate limits ---------------------------------------------------------------------------


def test_too_many_posts_from_one_address_answer_429_and_recover(
    client: Client, item: ContentItem, settings: Settings
) -> None:
    settings.REQUEST_RATE_PER_IP = "2/h"
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(2):
            assert client.post(FORM, valid(item, name="")).status_code == 200
        before = counts()
        data = valid(item, explanation="Kept as typed.")
        limited = client.post(FORM, data)
        assert limited.status_code == 429
        retry = int(limited["Retry-After"])
        assert 0 < retry <= 3600
        page = text(limited)
        assert "too many times" in page
        assert "Please try again in" in page
        assert "Kept as typed." in page  # nothing typed is lost
        assert counts() == before
    # The next window lets the same address in again.
    with time_machine.travel(start + timedelta(seconds=retry + 1), tick=False):
        assert client.post(FORM, valid(item)).status_code == 302


def test_too_many_requests_for_one_email_answer_429(
    client: Client, item: ContentItem, settings: Settings
) -> None:
    settings.REQUEST_RATE_PER_EMAIL = "1/h"
    assert client.post(FORM, valid(item, email="one@example.org")).status_code == 302
    # Mistakes do not count against the address: only complete requests do.
    assert client.post(FORM, valid(item, email="one@example.org", name="")).status_code == 200
    # The same address in other capitals is the same address.
    again = client.post(FORM, valid(item, email="ONE@Example.org"))
    assert again.status_code == 429
    assert int(again["Retry-After"]) > 0
    assert TakedownRequest.objects.count() == 1
    assert client.post(FORM, valid(item, email="two@example.org")).status_code == 302


def test_a_redis_outage_never_takes_the_form_down(
    client: Client, item: ContentItem, settings: Settings
) -> None:
    settings.REQUEST_RATE_PER_IP = "1/h"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    for _ in range(3):
        assert client.post(FORM, valid(item)).status_code == 302
    assert TakedownRequest.objects.count() == 3


def test_behind_a_proxy_the_limit_counts_the_forwarded_client_only_when_told(
    client: Client, item: ContentItem, settings: Settings
) -> None:
    settings.REQUEST_RATE_PER_IP = "1/h"
    # By default the connection's address counts: a forged X-Forwarded-For changes nothing.
    assert client.post(FORM, valid(item), HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 302
    assert client.post(FORM, valid(item), HTTP_X_FORWARDED_FOR="10.0.0.2").status_code == 429
    # TRUST_X_FORWARDED_FOR: the address our proxy added (the last one) counts.
    settings.RATELIMIT_IP_META_KEY = "rights.web.limits.forwarded_client_ip"
    first = valid(item)
    assert client.post(FORM, first, HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.3").status_code == 302
    assert client.post(FORM, valid(item), HTTP_X_FORWARDED_FOR="10.0.0.3").status_code == 429
    assert client.post(FORM, valid(item), HTTP_X_FORWARDED_FOR="10.0.0.4").status_code == 302
    # A mangled header falls back to the connection's address (already over its limit).
    assert client.post(FORM, valid(item), HTTP_X_FORWARDED_FOR="nonsense").status_code == 429


def test_a_bad_rate_setting_stops_start_up(tmp_path: Path) -> None:
    result = manage(
        "check",
        DEBUG="1",
        REQUEST_RATE_PER_IP="lots",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode != 0
    assert "REQUEST_RATE_PER_IP must be a rate such as 10/h" in result.stderr


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [FORM, SENT, "/", "/status/", "/admin/login/"])
def test_every_page_has_a_strict_content_security_policy(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(
        ([*part.split(" ", 1), ""])[:2] for part in (p.strip() for p in policy.split(";"))
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    page = response.content.decode()
    # Nothing the policy would block: no inline script (the admin's data-only script tags
    # carry a src too), no inline style.
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None
    assert "<style" not in page
    assert " style=" not in page


def test_every_page_names_its_icon_and_favicon_ico_finds_it(client: Client) -> None:
    icon = '<link rel="icon" href="/static/rights/favicon.svg" type="image/svg+xml">'
    for path in (FORM, SENT, "/", "/status/", "/nowhere/"):
        assert icon in client.get(path).content.decode(), path
    found = finders.find("rights/favicon.svg")
    assert isinstance(found, str)
    assert ElementTree.parse(found).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    # Asked for by name whatever the page says (crawlers, old browsers): no 404.
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/rights/favicon.svg"


def test_the_per_address_limit_counts_every_spelling_of_an_address_as_one(
    client: Client, item: ContentItem, settings: Settings
) -> None:
    settings.REQUEST_RATE_PER_EMAIL = "2/h"
    spellings = ["ve@bücher.example", "VE@xn--bcher-kva.example", "ve@BÜCHER.example"]
    answers = [
        client.post(FORM, valid(item, email=email, token=token())).status_code
        for email in spellings
    ]
    assert answers == [302, 302, 429]
    assert TakedownRequest.objects.count() == 2


@pytest.mark.parametrize("path", [FORM, "/status/", "/admin/login/"])
def test_an_unreadable_body_is_a_400_with_debug_on_too(
    client: Client, settings: Settings, path: str
) -> None:
    """Django's DEBUG error page reads the body again to show it: the 400 must come first."""
    settings.DEBUG = True
    client.raise_request_exception = False
    body, content_type = form_in("utf-16")
    response = client.generic("POST", path, body, content_type=content_type)
    assert response.status_code == 400
    assert "We could not read what your browser sent" in text(response)
