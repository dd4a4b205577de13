"""The requester's status page at its secret link: the state in plain words, the time left
(without script), each URL, the decision and its reasons, what can be done next (withdraw,
appeal: a GET never changes anything), the JSON the page polls, and "Lost your link?" (the same
words for every address; only a known one gets mail; rate limited)."""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client, RequestFactory
from django.utils import timezone
from pytest_django.fixtures import Settings

from rights import links
from rights.models import AuditEvent, ContentItem, Notification, Requester, TakedownRequest
from rights.services import review
from rights.services.notifications import notification_send
from rights.states import CaseState, ContentStatus, TargetState
from rights.web import errors
from rights.web import status as status_views
from rights.web.logs import RedactSecretLinks
from tests.engine import drive, untrusted
from tests.factories import ContentItemFactory
from tests.integration.test_request_form import unreadable_is_a_clear_400
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db


def page_of(case: TakedownRequest, suffix: str = "") -> str:
    return f"/status/{links.status_token(case)}/{suffix}"


def text(response: Any) -> str:
    """The words on the page, as a reader sees them (tags dropped)."""
    words = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(words).replace(" .", ".").replace(" :", ":").split())


def trail(case: TakedownRequest) -> tuple[Any, ...]:
    case.refresh_from_db()
    return (
        case.state,
        case.appeal_round,
        list(case.targets.order_by("pk").values_list("state", flat=True)),
        AuditEvent.objects.count(),
        Notification.objects.count(),
    )


@pytest.fixture
def reviewer(db: None) -> Any:
    return staff_in("reviewer", "reviewer-one")


@pytest.fixture
def rejected(submit: Any, item: ContentItem, reviewer: Any) -> TakedownRequest:
    case = untrusted(submit, item)
    return review.case_reject(
        case=case, user_id=reviewer.pk, reasons="You are not the owner.\n\nSee the byline."
    )


# --- the page ------------------------------------------------------------------------------


def test_the_page_shows_the_case_in_plain_words_with_the_time_left(
    client: Client, submit: Any, item: ContentItem
) -> None:
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        case = submit(urls=[item.source_url, "https://unknown.example/x"]).case
    with time_machine.travel(now + timedelta(hours=3, minutes=30), tick=False):
        response = client.get(page_of(case))
    assert response.status_code == 200
    words = text(response)
    body = response.content.decode()
    assert body.count("<h1") == 1
    assert f"Your request {case.reference}" in words
    assert "Being reviewed by our team" in words
    # The time left, right without any script.
    assert "20 hours 30 minutes from now" in words
    assert f'data-deadline="{case.deadline_at.replace(microsecond=0).isoformat()}"' in body
    # Each URL with its state in words.
    assert item.source_url in words
    assert "Waiting for a decision" in words
    assert "https://unknown.example/x" in words
    assert "Not on our site under any spelling" in words
    # What can be done: withdraw (to a page that asks first), no appeal yet.
    assert f'href="{page_of(case, "withdraw/")}"' in body
    assert "appeal/" not in body
    # Live with JavaScript, and says to refresh without it.
    assert 'aria-live="polite"' in body
    assert f'data-live-url="{page_of(case, "live.json")}"' in body
    assert re.search(r'<script src="[^"]*rights/status\.js" defer></script>', body)
    assert "<noscript>" in body
    assert "refresh it to see changes" in words
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body) is None
    # The address is the key: never passed on, indexed or cached.
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-store" in response["Cache-Control"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_a_decided_page_shows_the_reasons_and_the_appeal_until_when(
    client: Client, rejected: TakedownRequest, settings: Settings
) -> None:
    response = client.get(page_of(rejected))
    words = text(response)
    assert "Decided: not granted" in words
    assert "Our decision and its reasons" in words
    assert "You are not the owner." in words
    assert "See the byline." in words
    assert rejected.decided_at is not None
    until = rejected.decided_at + timedelta(seconds=settings.APPEAL_WINDOW)
    assert f"you can appeal against it until {until:%-d %B %Y}" in words
    body = response.content.decode()
    assert f'href="{page_of(rejected, "appeal/")}"' in body
    assert "withdraw/" not in body
    # Closed: no countdown, nothing to refresh for, no word of updates to come.
    assert 'data-testid="deadline"' not in body
    assert "<noscript>" not in body
    assert "data-live-note" not in body
    assert "updates itself" not in words
    assert 'data-closed="true"' in body


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (timedelta(seconds=119), "1 minute 59 seconds"),
        (timedelta(seconds=119, milliseconds=300), "2 minutes"),  # rounded up, as clocks count
        (timedelta(seconds=120), "2 minutes"),
        (timedelta(seconds=61), "1 minute 1 second"),
        (timedelta(seconds=60), "1 minute"),
        (timedelta(seconds=40), "40 seconds"),
        (timedelta(seconds=1), "1 second"),
        (timedelta(milliseconds=1), "1 second"),  # never "0" while any time is left
        (timedelta(seconds=599), "9 minutes 59 seconds"),
        (timedelta(seconds=600), "10 minutes"),
        (timedelta(seconds=659), "10 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=3, minutes=5, seconds=30), "3 hours 5 minutes"),
        (timedelta(0), ""),
        (timedelta(seconds=-5), ""),
    ],
)
def test_the_time_left_in_words(left: timedelta, words: str) -> None:
    now = timezone.now()
    assert status_views.time_left(now + left, now) == words


def test_a_short_deadline_counts_down_in_seconds_without_script(
    client: Client, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    start = timezone.now().replace(microsecond=0)
    TakedownRequest.objects.filter(pk=case.pk).update(deadline_at=start + timedelta(seconds=120))
    seen = {}
    for after in (1, 60, 80, 119):
        with time_machine.travel(start + timedelta(seconds=after), tick=False):
            response = client.get(page_of(case))
            seen[after] = text(response)
            live = client.get(page_of(case, "live.json")).json()
        assert live["time_left"] in seen[after]
    assert "1 minute 59 seconds from now" in seen[1]
    assert "1 minute from now" in seen[60]
    assert "40 seconds from now" in seen[80]
    assert "1 second from now" in seen[119]
    assert not any("0 minutes" in words for words in seen.values())
    # The script counts the same way, every second under this many seconds left.
    body = client.get(page_of(case)).content.decode()
    assert f'data-seconds-under="{status_views.SECONDS_SHOWN_UNDER}"' in body
    with time_machine.travel(start + timedelta(seconds=121), tick=False):
        words = text(client.get(page_of(case)))
    assert "from now" not in words
    assert "Its deadline was" in words


def test_a_forged_link_shows_what_to_do(client: Client, rejected: TakedownRequest) -> None:
    token = links.status_token(rejected)
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), "TD-AAAAAAA", "x" * 300):
        for suffix in ("", "withdraw/", "appeal/"):
            response = client.get(f"/status/{forged}/{suffix}")
            assert response.status_code == 404
            assert "This link does not work" in text(response)
            assert 'href="/status/"' in response.content.decode()
        live = client.get(f"/status/{forged}/live.json")
        assert live.status_code == 404
        assert live.json() == {"error": "not_found"}


# --- live updates --------------------------------------------------------------------------


def test_the_live_json_follows_the_case_and_shows_nothing_for_staff(
    client: Client, submit: Any, item: ContentItem, reviewer: Any
) -> None:
    case = untrusted(submit, item)
    first = client.get(page_of(case, "live.json"))
    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    assert "no-store" in first["Cache-Control"]
    assert first["Referrer-Policy"] == "no-referrer"
    body = first.json()
    assert body["case"]["reference"] == case.reference
    assert body["case"]["state"] == CaseState.IN_REVIEW
    assert body["closed"] is False
    assert body["time_left"]
    assert body["poll_seconds"] == 5  # a person decides: every few seconds is enough
    assert 'data-testid="targets"' in body["region"]
    for staff_only in ("trusted", "channel", "requester", "partner", "staff"):
        assert staff_only not in body["case"]
    assert "@" not in json.dumps(body)  # the requester's address is nowhere

    review.case_approve(case=case, user_id=reviewer.pk)
    drive(case)
    after = client.get(page_of(case, "live.json")).json()
    assert after["case"]["state"] == CaseState.REMOVED
    assert after["signature"] != body["signature"]
    assert after["closed"] is True
    assert "Done: the content has been removed" in after["region"]
    assert "Removed, and will not be republished" in after["region"]


def test_the_live_json_signature_ignores_the_clock(
    client: Client, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        first = client.get(page_of(case, "live.json")).json()
    with time_machine.travel(now + timedelta(minutes=7), tick=False):
        later = client.get(page_of(case, "live.json")).json()
    assert first["time_left"] != later["time_left"]
    assert first["signature"] == later["signature"]


# --- withdraw ------------------------------------------------------------------------------


def test_withdraw_asks_first_and_only_a_post_withdraws(
    client: Client, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    before = trail(case)
    ask = client.get(page_of(case, "withdraw/"))
    assert ask.status_code == 200
    words = text(ask)
    assert f"Withdraw your request {case.reference}?" in words
    assert "comes back, unless another request still holds it" in words
    body = ask.content.decode()
    assert re.search(
        r'<form method="post"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"', body
    )
    assert f'href="{page_of(case)}"' in body  # "No, keep my request"
    assert client.head(page_of(case, "withdraw/")).status_code == 200
    # A page with a form: same-origin, so that the browser's post carries its Origin.
    assert ask["Referrer-Policy"] == "same-origin"
    assert "noindex" in ask["X-Robots-Tag"]
    assert trail(case) == before

    done = client.post(page_of(case, "withdraw/"))
    assert done.status_code == 302
    assert done["Location"] == page_of(case)
    case.refresh_from_db()
    assert case.state == CaseState.WITHDRAWN
    assert case.targets.get().state == TargetState.WITHDRAWN
    assert Notification.objects.filter(case=case, kind="withdrawn").count() == 1
    assert "Withdrawn" in text(client.get(page_of(case)))

    # Again: refused in words, with a 4xx, and nothing more written.
    before = trail(case)
    for response in (
        client.get(page_of(case, "withdraw/")),
        client.post(page_of(case, "withdraw/")),
    ):
        assert response.status_code == 409
        assert "This request can no longer be withdrawn" in text(response)
        assert f'href="{page_of(case)}"' in response.content.decode()
    assert trail(case) == before


def test_withdrawing_after_the_failsafe_brings_the_content_back(
    client: Client, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    item.refresh_from_db()
    assert item.status == ContentStatus.DISABLED
    assert client.post(page_of(case, "withdraw/")).status_code == 302
    drive(case)
    item.refresh_from_db()
    assert item.status == ContentStatus.RESTORED


def test_a_decided_case_cannot_be_withdrawn(client: Client, rejected: TakedownRequest) -> None:
    before = trail(rejected)
    assert client.get(page_of(rejected, "withdraw/")).status_code == 409
    assert client.post(page_of(rejected, "withdraw/")).status_code == 409
    assert trail(rejected) == before


# --- appeal --------------------------------------------------------------------------------


def test_appeal_shows_a_form_and_only_a_post_appeals(
    client: Client, rejected: TakedownRequest
) -> None:
    before = trail(rejected)
    form = client.get(page_of(rejected, "appeal/"))
    assert form.status_code == 200
    words = text(form)
    assert "You are not the owner." in words
    assert "You can appeal until" in words
    body = form.content.decode()
    assert '<label class="label" for="id_reasons">' in body
    assert 'aria-describedby="id_reasons-hint"' in body
    assert trail(rejected) == before

    # No reasons: said next to the field, the page kept, nothing written.
    empty = client.post(page_of(rejected, "appeal/"), {"reasons": "   "})
    assert empty.status_code == 200
    page = empty.content.decode()
    assert 'id="id_reasons-error"' in page
    assert "Say why you disagree with the decision" in text(empty)
    assert 'href="#id_reasons"' in page
    assert 'aria-invalid="true"' in page
    assert trail(rejected) == before

    sent = client.post(page_of(rejected, "appeal/"), {"reasons": "I am the author: see my byline."})
    assert sent.status_code == 302
    assert sent["Location"] == page_of(rejected)
    rejected.refresh_from_db()
    assert rejected.state == CaseState.APPEALED
    assert rejected.appeal_reasons == "I am the author: see my byline."
    assert rejected.targets.get().state == TargetState.PENDING
    status = text(client.get(page_of(rejected)))
    assert "Appeal received; being reviewed again" in status
    assert "You appealed on" in status

    # Once per case: refused in words with a 4xx, nothing written.
    before = trail(rejected)
    for response in (
        client.get(page_of(rejected, "appeal/")),
        client.post(page_of(rejected, "appeal/"), {"reasons": "Again."}),
    ):
        assert response.status_code == 409
        assert "This decision cannot be appealed here" in text(response)
    assert trail(rejected) == before


@pytest.fixture
def second_reviewer(db: None) -> Any:
    return staff_in("reviewer", "reviewer-two")


def test_during_an_appeal_the_decision_shown_is_the_one_appealed(
    client: Client, rejected: TakedownRequest, second_reviewer: Any
) -> None:
    appealed = client.post(page_of(rejected, "appeal/"), {"reasons": "I wrote it: see the byline."})
    assert appealed.status_code == 302
    rejected.refresh_from_db()
    assert rejected.state == CaseState.APPEALED
    words = text(client.get(page_of(rejected)))
    assert "The decision you appealed You are not the owner." in words
    assert "Our decision and its reasons" not in words
    assert "You appealed on" in words

    # Nobody decides the appeal in time: the fail-safe takes the content offline again. Still
    # an appeal in progress, and the page says so.
    assert rejected.clock_started_at is not None
    with time_machine.travel(rejected.clock_started_at + timedelta(hours=23), tick=False):
        TakedownRequest.objects.filter(pk=rejected.pk).update(next_check_at=timezone.now())
        drive(rejected)
        rejected.refresh_from_db()
        assert rejected.state == CaseState.DISABLED_PENDING_REVIEW
        assert rejected.appeal_round == 1
        words = text(client.get(page_of(rejected)))
        live = client.get(page_of(rejected, "live.json")).json()
    for shown in (words, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", live["region"])).split())):
        assert "The decision you appealed" in shown
        assert "Our decision and its reasons" not in shown
        assert "You appealed on" in shown

    # Decided again, by someone else: the decision is ours again, and final.
    review.case_reject(
        case=rejected, user_id=second_reviewer.pk, reasons="The byline names someone else."
    )
    drive(rejected)
    rejected.refresh_from_db()
    assert rejected.closed_at is not None
    words = text(client.get(page_of(rejected)))
    assert "Our decision and its reasons" in words
    assert "The decision you appealed" not in words
    assert "You appealed on" not in words


def test_a_final_refusal_names_the_dispute_settlement_bodies_and_the_courts(
    client: Client, rejected: TakedownRequest, settings: Settings
) -> None:
    redress = (
        "out-of-court dispute settlement body (Digital Services Act, Article 21), or to a court"
    )
    # While it may be appealed: the appeal first, and the other ways too.
    words = text(client.get(page_of(rejected)))
    assert "Appeal against the decision" in words
    assert redress in words
    # Once it may not be appealed any more: what is left, in words.
    assert rejected.decided_at is not None
    late = rejected.decided_at + timedelta(seconds=settings.APPEAL_WINDOW + 1)
    with time_machine.travel(late, tick=False):
        response = client.get(page_of(rejected))
    words = text(response)
    assert "Appeal against the decision" not in words
    assert "This decision can no longer be appealed here." in words
    assert redress in words
    assert "Nothing more is needed from you" not in words
    assert f"quote {rejected.reference}" in words
    assert 'data-testid="redress"' in response.content.decode()


def test_a_granted_request_needs_nothing_more(
    client: Client, submit: Any, item: ContentItem, reviewer: Any
) -> None:
    case = untrusted(submit, item)
    review.case_approve(case=case, user_id=reviewer.pk)
    drive(case)
    words = text(client.get(page_of(case)))
    assert "Done: the content has been removed" in words
    assert "Nothing more is needed from you" in words
    assert "dispute settlement" not in words


def test_appeal_reasons_that_are_too_long_or_not_text_are_refused_at_the_field(
    client: Client, rejected: TakedownRequest
) -> None:
    before = trail(rejected)
    for reasons, message in (("x" * 10_001, "under 10,000 characters"), ("a\x00b", "null")):
        response = client.post(page_of(rejected, "appeal/"), {"reasons": reasons})
        assert response.status_code == 200
        assert message in text(response)
    assert trail(rejected) == before


def test_an_open_case_or_a_late_appeal_is_refused(
    client: Client, submit: Any, item: ContentItem, rejected: TakedownRequest, settings: Settings
) -> None:
    other = ContentItem.objects.create(
        slug="another",
        source_url="https://www.telegraph.co.uk/news/another/",
        source_domain="www.telegraph.co.uk",
        outlet=item.outlet,
        title="Another",
        body=".",
        published_at=timezone.now(),
    )
    open_case = submit(urls=[other.source_url], email="someone@example.net").case
    assert client.get(page_of(open_case, "appeal/")).status_code == 409
    before = trail(rejected)
    assert rejected.decided_at is not None
    late = rejected.decided_at + timedelta(seconds=settings.APPEAL_WINDOW + 1)
    with time_machine.travel(late, tick=False):
        assert client.get(page_of(rejected, "appeal/")).status_code == 409
        response = client.post(page_of(rejected, "appeal/"), {"reasons": "Late."})
        assert response.status_code == 409
        assert "out-of-court" in text(response)
        assert "appeal/" not in client.get(page_of(rejected)).content.decode()
    assert trail(rejected) == before


# --- lost link -----------------------------------------------------------------------------


def _ask_links(client: Client, email: str) -> str:
    response = client.post("/status/", {"email": email}, follow=True)
    assert response.redirect_chain == [("/status/sent/", 302)]
    assert "@" not in response.redirect_chain[0][0]
    return response.content.decode()


def test_lost_links_say_the_same_for_every_address_and_mail_only_known_ones(
    client: Client, submit: Any, item: ContentItem
) -> None:
    known = submit(urls=[item.source_url], email="known@example.org").case
    Requester.objects.create(email="suspended@example.org", name="S", suspended_at=timezone.now())
    form = client.get("/status/")
    assert form.status_code == 200
    assert '<label class="label" for="id_email">' in form.content.decode()

    pages = {
        email: _ask_links(client, email)
        for email in ("known@example.org", "nobody@example.org", "suspended@example.org")
    }
    assert len(set(pages.values())) == 1
    assert "If we have requests from that address" in pages["nobody@example.org"]
    for email, page in pages.items():
        assert email not in page

    links_sent = Notification.objects.filter(kind="status_links")
    assert list(links_sent.values_list("case__requester__email", flat=True)) == [
        "known@example.org"
    ]
    for notification in links_sent:
        notification_send(notification_id=notification.pk)
    assert [m.to for m in mail.outbox] == [["known@example.org"]]
    assert links.status_url(known) in mail.outbox[0].body


def test_lost_links_take_the_same_time_for_known_and_unknown_addresses(
    client: Client, submit: Any, item: ContentItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known address writes to the outbox and an unknown one does not: each answer is held to
    the same floor, so its timing tells them apart no more than its words do."""
    submit(urls=[item.source_url], email="known@example.org")
    taken: dict[str, float] = {}
    real_sleep = status_views.time.sleep
    for email in ("known@example.org", "nobody@example.org"):
        slept: list[float] = []
        monkeypatch.setattr(status_views.time, "sleep", lambda s, slept=slept: slept.append(s))
        started = status_views.time.monotonic()
        _ask_links(client, email)
        monkeypatch.setattr(status_views.time, "sleep", real_sleep)
        assert len(slept) == 1
        taken[email] = slept[0]
        # Under a heavy load the work itself may outlast the floor: then no wait is added.
        assert 0 <= slept[0] <= status_views.LOST_LINK_SECONDS
        assert status_views.time.monotonic() - started + slept[0] >= status_views.LOST_LINK_SECONDS
    assert Notification.objects.filter(kind="status_links").count() == 1


def test_lost_links_find_an_address_in_any_spelling_of_its_domain(
    client: Client, submit: Any, item: ContentItem
) -> None:
    submit(urls=[item.source_url], email="ve@bücher.example")
    _ask_links(client, "VE@xn--bcher-kva.example")
    assert Notification.objects.filter(kind="status_links").count() == 1


def test_a_mistyped_address_is_shown_next_to_the_field(client: Client) -> None:
    for value, message in (("", "Enter your email address"), ("nope", "correct format")):
        response = client.post("/status/", {"email": value})
        assert response.status_code == 200
        page = response.content.decode()
        assert message in text(response)
        assert 'id="id_email-error"' in page
        assert 'href="#id_email"' in page
    assert client.post("/status/", {"email": "a\x00@example.org"}).status_code == 200
    assert Notification.objects.count() == 0


def test_lost_links_are_rate_limited_per_address_and_recover(
    client: Client, submit: Any, item: ContentItem, settings: Settings
) -> None:
    submit(urls=[item.source_url], email="known@example.org")
    settings.STATUS_LINKS_RATE_PER_EMAIL = "1/h"
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert client.post("/status/", {"email": "known@example.org"}).status_code == 302
        limited = client.post("/status/", {"email": "Known@Example.org"})
        assert limited.status_code == 429
        retry = int(limited["Retry-After"])
        assert 0 < retry <= 3600
        assert "Please try again in" in text(limited)
        assert client.post("/status/", {"email": "other@example.org"}).status_code == 302
    with time_machine.travel(start + timedelta(seconds=retry + 1), tick=False):
        assert client.post("/status/", {"email": "known@example.org"}).status_code == 302


def test_lost_links_are_rate_limited_per_ip(client: Client, settings: Settings) -> None:
    settings.STATUS_LINKS_RATE_PER_IP = "2/h"
    for n in range(2):
        assert client.post("/status/", {"email": f"p{n}@example.org"}).status_code == 302
    limited = client.post("/status/", {"email": "p9@example.org"})
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert 'value="p9@example.org"' in limited.content.decode()  # kept as typed


# --- private answers, and bodies we cannot read --------------------------------------------


def is_private(response: Any, referrer: str = "no-referrer") -> None:
    """Never cached, never indexed, and the address (a key) never sent on to another site."""
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == referrer


def test_every_answer_to_a_post_from_a_status_page_is_private(
    client: Client, submit: Any, item: ContentItem, rejected: TakedownRequest, settings: Settings
) -> None:
    settings.STATUS_LINKS_RATE_PER_IP = "2/h"
    other = ContentItemFactory.create(outlet=item.outlet)
    open_case = submit(urls=[other.source_url], email="other@example.net").case
    answers = [
        client.post(page_of(rejected, "appeal/"), {"reasons": ""}),  # 200, its mistake shown
        client.post(page_of(rejected, "appeal/"), {"reasons": "I wrote it."}),  # 302
        client.post(page_of(rejected, "appeal/"), {"reasons": "Again."}),  # 409
        client.post(page_of(open_case, "withdraw/")),  # 302
        client.post(page_of(open_case, "withdraw/")),  # 409
        client.post("/status/", {"email": "nope"}),  # 200, its mistake shown
        client.post("/status/", {"email": "known@example.org"}),  # 302
    ]
    assert [a.status_code for a in answers] == [200, 302, 409, 302, 409, 200, 302]
    answers.append(client.post("/status/", {"email": "known@example.org"}))
    assert answers[-1].status_code == 429
    for answer in answers:
        # Pages with a form post it with their Origin: same-origin, which tells no other site.
        is_private(answer, referrer="same-origin")


def test_a_refused_form_or_a_missing_page_at_a_secret_address_is_private(
    submit: Any, item: ContentItem, rejected: TakedownRequest
) -> None:
    open_case = untrusted(submit, item)
    browser = Client(enforce_csrf_checks=True)  # no CSRF cookie: the form is refused
    before = trail(open_case)
    for path in (page_of(open_case, "withdraw/"), page_of(rejected, "appeal/"), "/status/"):
        refused = browser.post(path, {"reasons": "x", "email": "known@example.org"})
        assert refused.status_code == 403
        assert "Your form could not be sent" in text(refused)
        is_private(refused)
    assert trail(open_case) == before
    missing = browser.get(page_of(open_case, "nowhere/"))
    assert missing.status_code == 404
    assert "Page not found" in text(missing)
    is_private(missing)
    # Elsewhere, the site's ordinary headers.
    elsewhere = browser.post("/request/", {})
    assert elsewhere.status_code == 403
    assert "X-Robots-Tag" not in elsewhere
    assert "no-store" not in elsewhere.get("Cache-Control", "")


def test_a_server_error_at_a_secret_address_is_private(rejected: TakedownRequest) -> None:
    response = errors.server_error(RequestFactory().post(page_of(rejected, "withdraw/")))
    assert response.status_code == 500
    assert "Something went wrong" in text(response)
    is_private(response)
    elsewhere = errors.server_error(RequestFactory().post("/request/"))
    assert elsewhere.status_code == 500
    assert "X-Robots-Tag" not in elsewhere


@pytest.mark.parametrize("charset", ["utf-16", "utf-7"])
@pytest.mark.parametrize("csrf", [False, True], ids=["view", "csrf-check"])
def test_an_unreadable_post_from_a_status_page_is_a_clear_400_and_does_nothing(
    submit: Any, item: ContentItem, rejected: TakedownRequest, charset: str, csrf: bool
) -> None:
    open_case = untrusted(submit, item)
    client = Client(enforce_csrf_checks=csrf)
    client.get(page_of(open_case, "withdraw/"))  # the CSRF cookie, as a browser has it
    before = (trail(open_case), trail(rejected))
    for path in (page_of(open_case, "withdraw/"), page_of(rejected, "appeal/"), "/status/"):
        response = unreadable_is_a_clear_400(client, path, charset)
        is_private(response)
    assert (trail(open_case), trail(rejected)) == before
    assert Notification.objects.filter(kind="status_links").count() == 0


# --- what reaches the logs ----------------------------------------------------------------


def test_secret_links_never_reach_the_logs(client: Client, rejected: TakedownRequest) -> None:
    token = links.status_token(rejected)
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        ("Conflict", f"/status/{token}/withdraw/"),
        None,
    )
    assert RedactSecretLinks().filter(record)
    assert token not in record.getMessage()
    assert record.getMessage() == "Conflict: /status/[redacted]/withdraw/"
    line = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        f'"POST /confirm/{token}/ HTTP/1.1" 302 0',
        None,
        None,
    )
    RedactSecretLinks().filter(line)
    assert token not in line.getMessage()


def test_addresses_searched_for_never_reach_the_logs() -> None:
    for request_line in (
        '"GET /admin/rights/requester/?q=someone@example.org HTTP/1.1" 200 0',
        '"GET /admin/rights/takedownrequest/?q=someone%40example.org&o=1 HTTP/1.1" 200 0',
    ):
        line = logging.LogRecord(
            "django.server", logging.INFO, __file__, 1, request_line, None, None
        )
        RedactSecretLinks().filter(line)
        assert "someone" not in line.getMessage()
        assert "[address]" in line.getMessage()
