"""Intake: checks, resolution, merging, the clock and trust (rights/services/intake.py)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from rights import audit
from rights.errors import DomainError, TransitionNotAllowed
from rights.models import AuditEvent, ContentItem, Outlet, Requester, TakedownRequest, Target
from rights.services.intake import InvalidRequest, Submission, takedown_confirm
from rights.services.intake_checks import check_takedown
from rights.services.trust import decide_trust
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS_VERSION
from rights.states import CaseState, TargetState
from rights.workflow import transition
from tests.factories import (
    ContentItemFactory,
    OutletDomainFactory,
    OutletFactory,
    RequesterFactory,
    statements_for,
)

NOW = datetime(2026, 5, 4, 9, 15, 30, 123456, tzinfo=UTC)
MODELS = (Requester, TakedownRequest, Target, AuditEvent)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def nothing_written(db: None) -> Iterator[None]:
    """Assert that the test body wrote no requester, case, target or audit event."""
    before = counts()
    yield
    assert counts() == before


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def bbc() -> Outlet:
    outlet = OutletFactory.create(name="BBC", slug="bbc", is_partner=True)
    OutletDomainFactory.create(outlet=outlet, domain="bbc.co.uk")
    return outlet


def refused(submit: Any, **fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as excinfo:
        submit(**fields)
    return excinfo.value


# --- Bad input: a clear error naming the field, and nothing written ----------------------


@pytest.mark.smoke
@pytest.mark.parametrize("urls", [[], (), None])
def test_no_url(submit: Any, nothing_written: None, urls: Any) -> None:
    error = refused(submit, urls=urls)
    assert error.field == "urls"
    assert "at least one URL" in error.errors["urls"]
    assert str(error).startswith("urls: ")
    assert error.as_dict()["errors"] == error.errors


@pytest.mark.smoke
@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "file:///etc/passwd",
        "data:text/html,<b>x</b>",
        "ftp://www.telegraph.co.uk/news/a/",
    ],
)
def test_url_with_other_scheme(submit: Any, nothing_written: None, item: Any, url: str) -> None:
    error = refused(submit, urls=[item.source_url, url])
    assert error.errors == {"urls[1]": "must start with http:// or https://"}
    assert error.field == "urls[1]"


def test_every_bad_url_is_named(submit: Any, nothing_written: None) -> None:
    error = refused(submit, urls=["javascript:alert(1)", "https://ok.example/a", "", "http://"])
    assert set(error.errors) == {"urls[0]", "urls[2]", "urls[3]"}


@override_settings(TAKEDOWN_MAX_URLS=100)
def test_ten_thousand_urls(submit: Any, nothing_written: None) -> None:
    urls = [f"https://www.telegraph.co.uk/news/{n}/" for n in range(10_000)]
    error = refused(submit, urls=urls)
    assert error.field == "urls"
    assert "10,000" in error.errors["urls"]
    assert "at most 100" in error.errors["urls"]


def test_just_enough_urls_are_accepted(submit: Any) -> None:
    limit = settings.TAKEDOWN_MAX_URLS
    urls = [f"https://unknown.example/{n}" for n in range(limit)]
    result = submit(urls=urls)
    assert result.case.targets.count() == limit


@pytest.mark.smoke
def test_megabyte_explanation(submit: Any, nothing_written: None, item: Any) -> None:
    error = refused(submit, urls=[item.source_url], explanation="x" * 1_048_576)
    assert error.field == "explanation"
    assert "too long" in error.errors["explanation"]
    assert "1,048,576" in error.errors["explanation"]


def test_long_name(submit: Any, nothing_written: None, item: Any) -> None:
    error = refused(submit, urls=[item.source_url], name="N" * 201)
    assert error.field == "name"
    assert "too long" in error.errors["name"]


@pytest.mark.parametrize("basis", sorted(REQUIRED_STATEMENTS))
def test_missing_sworn_statements(
    submit: Any, nothing_written: None, item: Any, basis: str
) -> None:
    """The web form and the API require the requester to swear, at the door."""
    required = list(REQUIRED_STATEMENTS[basis])
    for missing in required:
        error = refused(
            submit,
            channel="web",
            urls=[item.source_url],
            basis=basis,
            statements=[s for s in required if s != missing],
        )
        assert error.field == "statements"
        assert missing in error.errors["statements"]
        assert basis in error.errors["statements"]
    error = refused(submit, channel="web", urls=[item.source_url], basis=basis, statements=[])
    for statement in required:
        assert statement in error.errors["statements"]


@pytest.mark.parametrize(
    "statements",
    [
        ["owner_or_agent", "good_faith", "accurate", "made_up"],
        ["owner_or_agent", "good_faith", "accurate", 7],
        (s for s in ["made_up", "owner_or_agent", "good_faith", "accurate"]),
    ],
)
def test_unknown_statements(submit: Any, nothing_written: None, item: Any, statements: Any) -> None:
    error = refused(submit, urls=[item.source_url], statements=statements)
    assert error.field == "statements"
    assert "unknown statements" in error.errors["statements"]


@pytest.mark.parametrize(
    "statements", ["owner_or_agent", 42, None, {"owner_or_agent": True, "accurate": True}]
)
def test_statements_not_a_list(
    submit: Any, nothing_written: None, item: Any, statements: Any
) -> None:
    error = refused(submit, urls=[item.source_url], statements=statements)
    assert error.errors["statements"] == "must be a list of statement keys"


@pytest.mark.smoke
@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "plainaddress",
        "@telegraph.co.uk",
        "ed@",
        "ed@@telegraph.co.uk",
        "ed@telegraph..co.uk",
        "ed telegraph@example.com",
        "ed@localhost",
        "ed@-telegraph.co.uk",
        "ed@[127.0.0.1]",
        "ed@telegraph.co.uk>",
        "ed@example.com\nBcc: victim@example.com",
        "é\u0301d@example.com",
        "x" * 250 + "@example.com",
        None,
        42,
        ["ed@example.com"],
    ],
)
def test_malformed_email(submit: Any, nothing_written: None, item: Any, email: Any) -> None:
    error = refused(submit, urls=[item.source_url], email=email)
    assert error.field == "email"
    assert set(error.errors) == {"email"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Ed\x00ward"),
        ("organisation", "The\x00Telegraph"),
        ("explanation", "Please remove\x00 this."),
        ("email", "ed\x00@example.com"),
    ],
)
def test_nul_bytes_in_text(
    submit: Any, nothing_written: None, item: Any, field: str, value: str
) -> None:
    error = refused(submit, urls=[item.source_url], **{field: value})
    assert error.field == field
    assert "control" in error.errors[field]


@pytest.mark.smoke
def test_nul_byte_in_url(submit: Any, nothing_written: None, item: Any) -> None:
    error = refused(submit, urls=[item.source_url + "\x00"])
    assert error.field == "urls[0]"
    assert "control" in error.errors["urls[0]"]


@pytest.mark.parametrize("field", ["name", "organisation", "explanation", "email", "urls"])
@pytest.mark.parametrize(
    "odd",
    [chr(0xD800), chr(0xDFFF), "\u202e", "\u202d", "\u2066", "\x1b[31m", "\x7f"],
    ids=["lone-high", "lone-low", "RLO", "LRO", "LRI", "escape", "DEL"],
)
def test_forbidden_unicode_refused_everywhere(
    submit: Any, nothing_written: None, item: Any, field: str, odd: str
) -> None:
    fields: dict[str, Any] = {"urls": [item.source_url]}
    if field == "urls":
        fields["urls"] = [item.source_url + "x" + odd + "y"]
        key = "urls[0]"
    elif field == "email":
        fields["email"] = "ed" + odd + "@example.com"
        key = "email"
    else:
        fields[field] = "Ab" + odd + "cd"
        key = field
    error = refused(submit, **fields)
    assert error.field == key
    assert set(error.errors) == {key}


@pytest.mark.parametrize("field", ["name", "organisation"])
@pytest.mark.parametrize("value", ["Ed\nward", "Ed\rward", "Ed\tward"])
def test_line_breaks_refused_in_single_line_fields(
    submit: Any, nothing_written: None, item: Any, field: str, value: str
) -> None:
    error = refused(submit, urls=[item.source_url], **{field: value})
    assert error.field == field


@pytest.mark.smoke
def test_names_are_stored_nfc_and_invisible_joiners_accepted(submit: Any, item: Any) -> None:
    """Zero-width and combining characters are real text in many scripts: accepted in every
    free-text field alike, and stored in NFC so that one name has one spelling."""
    decomposed = "Zoe\u0308 Ame\u0301ndola"
    joined = "\u0915\u094d\u200d\u0937 \U0001f469\u200d\U0001f4bb \u200bOwner"
    result = submit(
        urls=[item.source_url],
        name=decomposed,
        organisation=joined,
        explanation=f"{decomposed}\n{joined}",
    )
    requester = result.case.requester
    requester.refresh_from_db()
    assert requester.name == "Zoë Améndola"
    assert requester.name == "Zo\u00eb Am\u00e9ndola"
    assert requester.organisation == joined
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.explanation == f"Zoë Améndola\n{joined}"


def test_nfc_name_matches_precomposed(submit: Any, item: Any) -> None:
    first = check_takedown(
        Submission(
            channel="email",
            email="a@example.org",
            name="Jose\u0301",
            basis="copyright",
            urls=[item.source_url],
            statements=statements_for(),
        )
    )
    second = check_takedown(
        Submission(
            channel="email",
            email="a@example.org",
            name="Jos\u00e9",
            basis="copyright",
            urls=[item.source_url],
            statements=statements_for(),
        )
    )
    assert first.name == second.name == "José"


@pytest.mark.smoke
@pytest.mark.parametrize("basis", ["", "dmca", "COPYRIGHT", None, 3])
def test_unknown_basis(submit: Any, nothing_written: None, item: Any, basis: Any) -> None:
    error = refused(submit, channel="web", urls=[item.source_url], basis=basis)
    assert error.field == "basis"
    assert "copyright" in error.errors["basis"]
    assert "statements" not in error.errors


@pytest.mark.parametrize(
    "urls",
    [
        "https://www.telegraph.co.uk/news/a/",
        b"https://www.telegraph.co.uk/news/a/",
        42,
        {"https://www.telegraph.co.uk/news/a/": True},
    ],
    ids=["str", "bytes", "int", "dict"],
)
def test_urls_not_a_list(submit: Any, nothing_written: None, urls: Any) -> None:
    error = refused(submit, urls=urls)
    assert error.errors == {"urls": "must be a list of URLs"}


@pytest.mark.parametrize("urls", [[None], [42], [["https://a.example/"]]])
def test_url_items_not_text(submit: Any, nothing_written: None, urls: Any) -> None:
    error = refused(submit, urls=urls)
    assert error.errors == {"urls[0]": "must be text"}


def test_unknown_channel(submit: Any, nothing_written: None, item: Any) -> None:
    error = refused(submit, urls=[item.source_url], channel="fax")
    assert error.field == "channel"


def test_every_field_at_fault_is_named(submit: Any, nothing_written: None) -> None:
    error = refused(
        submit,
        email="nope",
        name="",
        basis="dmca",
        urls="https://a.example/",
        explanation="\x00",
    )
    assert set(error.errors) == {"email", "name", "basis", "urls", "explanation"}


@pytest.mark.parametrize("domain", ["not a domain", "localhost", "a/b", 42])
def test_bad_whole_domain(submit: Any, nothing_written: None, domain: Any) -> None:
    error = refused(submit, whole_domain=domain)
    assert error.field == "whole_domain"
    assert "urls" not in error.errors


def test_api_request_needs_its_outlet(submit: Any, nothing_written: None, item: Any) -> None:
    with pytest.raises(DomainError) as excinfo:
        submit(channel="api", urls=[item.source_url])
    assert excinfo.value.field == "outlet"


@pytest.mark.smoke
def test_suspended_requester_is_refused_plainly_to_staff(submit: Any, item: Any) -> None:
    RequesterFactory.create(email="owner@example.org", suspended_at=timezone.now())
    before = counts()
    with pytest.raises(DomainError) as excinfo:
        submit(channel="staff", urls=[item.source_url], email="Owner@Example.org")
    assert excinfo.value.code == "requester_suspended"
    assert excinfo.value.field == "email"
    assert counts() == before


@pytest.mark.parametrize("channel", ["web", "email"])
def test_a_public_door_answers_a_suspended_requester_as_anyone_else(
    submit: Any, item: Any, channel: str
) -> None:
    """Nothing the door returns tells a suspended address from any other: a case is made, and
    only the email to that address says it was refused, and why."""
    RequesterFactory.create(email="owner@example.org", suspended_at=timezone.now())
    result = submit(channel=channel, urls=[item.source_url], email="owner@example.org")
    assert result.created
    assert result.merged == []
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.state == CaseState.REJECTED
    assert list(case.notifications.values_list("kind", flat=True)) == ["suspended"]
    assert ContentItem.objects.get(pk=item.pk).status == "live"
    refused_event = AuditEvent.objects.get(stream=case.audit_stream(), action="case.rejected")
    assert refused_event.data["refused"] == "requester_suspended"


# --- Normalisation and resolution --------------------------------------------------------


@pytest.mark.smoke
def test_happy_path_email_request(submit: Any, item: Any, frozen: Any) -> None:
    result = submit(
        urls=[item.source_url],
        email=" Owner@Example.ORG ",
        name="  Owner Name ",
        explanation="It is mine.",
    )
    assert result.created
    assert result.merged == []
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.reference.startswith("TD-")
    assert len(case.reference) == 10
    assert case.state == CaseState.IN_REVIEW
    assert case.channel == "email"
    assert case.basis == "copyright"
    assert case.statements == statements_for("copyright")
    assert case.statements_version == STATEMENTS_VERSION
    assert not case.trusted
    assert case.requester.email == "owner@example.org"
    assert case.requester.name == "Owner Name"
    [target] = case.targets.all()
    assert (target.url, target.content_item, target.state) == (
        item.source_url,
        item,
        TargetState.PENDING,
    )
    actions = list(
        AuditEvent.objects.filter(stream=f"case:{case.reference}").values_list("action", flat=True)
    )
    assert actions == ["case.received", "case.in_review"]
    audit.verify()


def test_urls_normalised_at_intake(submit: Any, item: Any) -> None:
    messy = (
        item.source_url.replace("https://www.telegraph.co.uk", "HTTPS://WWW.Telegraph.CO.UK:443")
        + "?utm_source=twitter&utm_medium=social&fbclid=abc#comments"
    )
    result = submit(urls=[messy, item.source_url])
    [target] = result.case.targets.all()
    assert target.url == item.source_url
    assert target.content_item == item


def test_resolution_by_our_public_url(submit: Any, item: Any) -> None:
    assert settings.PUBLIC_BASE_URL == "https://news.example"
    for index, url in enumerate(
        (
            item.public_url,
            f"https://news.example/a/{item.slug}/",
            f"https://NEWS.example/a/{item.slug}",
            f"http://news.example/a/{item.slug}/?utm_source=x#top",
        )
    ):
        # A different requester each time, so that no request merges into an earlier one.
        result = submit(urls=[url], email=f"reader{index}@example.org")
        [target] = result.case.targets.all()
        assert target.content_item == item, url
        assert target.state == TargetState.PENDING


def test_resolution_by_primary_source(submit: Any, item: Any) -> None:
    result = submit(urls=[item.source_url])
    [target] = result.case.targets.all()
    assert target.content_item == item


def test_our_url_and_source_url_make_one_target(submit: Any, item: Any) -> None:
    other = ContentItemFactory.create(outlet=item.outlet)
    result = submit(urls=[item.public_url, item.source_url, other.public_url])
    targets = list(result.case.targets.all())
    assert [t.content_item for t in targets] == [item, other]
    assert targets[0].url == item.public_url


def test_other_paths_on_our_site_are_not_found(submit: Any, item: Any) -> None:
    result = submit(
        urls=[
            f"https://news.example/a/{item.slug}/comments/",
            f"https://news.example/b/{item.slug}/",
            "https://news.example/a/no-such-article/",
        ]
    )
    assert [t.state for t in result.case.targets.all()] == [TargetState.NOT_FOUND] * 3


def test_unknown_url_target_not_found(submit: Any, item: Any, frozen: Any) -> None:
    result = submit(urls=["https://unknown.example/story", item.source_url])
    not_found, found = result.case.targets.order_by("content_item_id")
    # NULLs sort last on PostgreSQL and first on SQLite: compare as a set.
    by_url = {t.url: t for t in (not_found, found)}
    missing = by_url["https://unknown.example/story"]
    assert missing.content_item is None
    assert missing.state == TargetState.NOT_FOUND
    assert missing.outcome_at == NOW
    assert by_url[item.source_url].state == TargetState.PENDING
    assert by_url[item.source_url].outcome_at is None


def test_only_unknown_urls_make_a_case_closed_as_not_found(submit: Any, db: None) -> None:
    """Nothing of ours under any spelling: the case is recorded, said so, and closed at once,
    never left in a queue that no rung watches."""
    result = submit(urls=["https://unknown.example/story"])
    assert result.created
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.state == CaseState.NOT_FOUND
    assert case.closed_at is not None
    assert case.next_check_at is None
    assert [t.state for t in case.targets.all()] == [TargetState.NOT_FOUND]
    assert list(case.notifications.values_list("kind", flat=True)) == ["not_found"]


# --- Whole domain ------------------------------------------------------------------------


@pytest.fixture
def domains(outlet: Outlet) -> dict[str, list[ContentItem]]:
    other = bbc()
    return {
        "www": [ContentItemFactory.create(outlet=outlet) for _ in range(3)],
        "bare": [ContentItemFactory.create(outlet=outlet, source_domain="telegraph.co.uk")],
        "sub": [ContentItemFactory.create(outlet=outlet, source_domain="a.b.telegraph.co.uk")],
        "lookalike": [
            ContentItemFactory.create(outlet=None, source_domain="evil-telegraph.co.uk"),
            ContentItemFactory.create(outlet=None, source_domain="telegraph.co.uk.evil.com"),
            ContentItemFactory.create(outlet=None, source_domain="telegraph.co"),
        ],
        "other": [ContentItemFactory.create(outlet=other, source_domain="www.bbc.co.uk")],
    }


def test_whole_domain_covers_its_subdomains_only(
    submit: Any, domains: dict[str, list[ContentItem]]
) -> None:
    result = submit(whole_domain="Telegraph.co.uk")
    case = result.case
    assert case.whole_domain == "telegraph.co.uk"
    covered = {t.content_item for t in case.targets.all()}
    assert covered == {*domains["www"], *domains["bare"], *domains["sub"]}
    assert all(t.state == TargetState.PENDING for t in case.targets.all())


def test_whole_domain_with_explicit_url_of_it(
    submit: Any, domains: dict[str, list[ContentItem]]
) -> None:
    first = domains["www"][0]
    result = submit(
        whole_domain="www.telegraph.co.uk",
        urls=[first.public_url, "https://unknown.example/x"],
    )
    # www. is one of the site's everyday hosts: the request is for the site, every host of it.
    assert result.case.whole_domain == "telegraph.co.uk"
    targets = list(result.case.targets.all())
    site = len(domains["www"]) + len(domains["bare"]) + len(domains["sub"])
    assert len(targets) == site + 1
    assert sum(1 for t in targets if t.content_item == first) == 1
    assert sum(1 for t in targets if t.state == TargetState.NOT_FOUND) == 1


@pytest.mark.smoke
def test_whole_domain_without_items(submit: Any, item: Any) -> None:
    before = counts()
    error = refused(submit, whole_domain="bbc.co.uk")
    assert error.field == "whole_domain"
    assert "bbc.co.uk" in error.errors["whole_domain"]
    assert counts() == before


# --- Merging repeats ---------------------------------------------------------------------


def verified(submit: Any) -> Any:
    """Submissions from a sender whose address is verified (staff vouch for it)."""
    return functools.partial(submit, channel="staff", email_verified=True, actor="staff:1")


@pytest.mark.smoke
def test_repeat_request_returns_the_open_case(submit: Any, item: Any) -> None:
    submit = verified(submit)
    first = submit(urls=[item.source_url])
    cases_before = TakedownRequest.objects.count()
    targets_before = Target.objects.count()

    again = submit(urls=[item.public_url + "?utm_source=x"], email="OWNER@example.org")

    assert not again.created
    assert again.case.pk == first.case.pk
    assert again.merged == [(item.public_url, first.case.reference)]
    assert TakedownRequest.objects.count() == cases_before
    assert Target.objects.count() == targets_before
    last = AuditEvent.objects.filter(stream=f"case:{first.case.reference}").last()
    assert last is not None
    assert last.action == "case.repeat_received"
    audit.verify()


def test_partially_new_request_makes_a_case_for_the_new_urls(submit: Any, item: Any) -> None:
    submit = verified(submit)
    first = submit(urls=[item.source_url])
    new_item = ContentItemFactory.create(outlet=item.outlet)
    second = submit(urls=[item.source_url, new_item.source_url])

    assert second.created
    assert second.case.pk != first.case.pk
    assert [t.content_item for t in second.case.targets.all()] == [new_item]
    assert second.merged == [(item.source_url, first.case.reference)]
    assert [t.content_item for t in first.case.targets.all()] == [item]
    received = AuditEvent.objects.get(
        stream=f"case:{second.case.reference}", action="case.received"
    )
    assert received.data["merged_into"] == [first.case.reference]


def test_another_requester_gets_their_own_case(submit: Any, item: Any) -> None:
    first = submit(urls=[item.source_url])
    second = submit(urls=[item.source_url], email="someone-else@example.org")
    assert second.created
    assert second.case.pk != first.case.pk


def test_closed_case_is_not_merged_into(submit: Any, item: Any) -> None:
    first = submit(urls=[item.source_url])
    transition(first.case, CaseState.REJECTED, actor="staff:1")
    second = submit(urls=[item.source_url])
    assert second.created
    assert second.case.pk != first.case.pk


def test_email_repeat_of_unconfirmed_web_request_starts_a_clock(
    submit: Any, item: Any, frozen: Any
) -> None:
    """The clock starts at receipt for email: merging into a case that waits for confirmation
    (and so has no clock) would leave the emailed request without a deadline."""
    web = submit(channel="web", urls=[item.source_url])
    assert web.case.state == CaseState.AWAITING_CONFIRMATION
    emailed = submit(channel="email", urls=[item.source_url])
    case = TakedownRequest.objects.get(pk=emailed.case.pk)
    assert case.deadline_at == NOW + timedelta(seconds=settings.TAKEDOWN_DEADLINE)
    assert case.state == CaseState.IN_REVIEW


def test_double_clicked_form_makes_one_case(submit: Any, item: Any) -> None:
    first = submit(channel="web", urls=[item.source_url], external_id="form-token-1")
    again = submit(channel="web", urls=[item.source_url], external_id="form-token-1")
    assert not again.created
    assert again.case.pk == first.case.pk
    assert TakedownRequest.objects.count() == 1


def test_an_unverified_submission_never_touches_a_verified_requesters_case(
    submit: Any, item: Any
) -> None:
    """Anyone can type someone else's address: no merge, no rename, no reference or state
    leaked, and nothing appended to the other case's trail."""
    theirs = verified(submit)(urls=[item.source_url], name="Ann Owner", organisation="Press")
    trail = list(AuditEvent.objects.filter(stream=theirs.case.audit_stream()))
    for channel in ("email", "web"):
        other = submit(
            channel=channel,
            email="owner@example.org",
            name="Mallory",
            organisation="Mallory Ltd",
            urls=[item.source_url],
        )
        assert other.created
        assert other.case.pk != theirs.case.pk
        assert other.merged == []
        assert theirs.case.reference not in str(other.case.__dict__)
    requester = Requester.objects.get(email="owner@example.org")
    assert (requester.name, requester.organisation) == ("Ann Owner", "Press")
    assert list(AuditEvent.objects.filter(stream=theirs.case.audit_stream())) == trail


@pytest.mark.parametrize("channel", ["email", "web", "api"])
def test_the_same_id_with_another_request_is_refused_and_writes_nothing(
    submit: Any, item: Any, outlet: Outlet, channel: str
) -> None:
    extra = {"outlet": outlet} if channel == "api" else {}
    first = submit(channel=channel, urls=[item.source_url], external_id="<id-1@x>", **extra)
    before = counts()
    other = ContentItemFactory.create(outlet=outlet)
    with pytest.raises(DomainError) as excinfo:
        submit(channel=channel, urls=[other.source_url], external_id="<id-1@x>", **extra)
    assert excinfo.value.code == "idempotency_conflict"
    assert excinfo.value.field == "external_id"
    assert first.case.reference not in str(excinfo.value)
    assert counts() == before
    again = submit(channel=channel, urls=[item.source_url], external_id="<id-1@x>", **extra)
    assert again.case.pk == first.case.pk
    assert not again.created


def test_ids_are_scoped_to_their_door_and_partner(submit: Any, item: Any, outlet: Outlet) -> None:
    other_partner = OutletFactory.create(slug="other-partner", is_partner=True)
    doors: list[dict[str, Any]] = [
        {"channel": "email"},
        {"channel": "web"},
        {"channel": "api", "outlet": outlet},
        {"channel": "api", "outlet": other_partner},
    ]
    cases = {
        submit(urls=[item.source_url], external_id="k", email=f"p{n}@example.org", **door).case.pk
        for n, door in enumerate(doors)
    }
    assert len(cases) == 4


@pytest.mark.parametrize("channel", ["email", "staff"])
def test_email_and_staff_may_arrive_without_sworn_statements(
    submit: Any, item: Any, channel: str
) -> None:
    result = submit(channel=channel, urls=[item.source_url], basis="", statements=[])
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.statements == []
    assert case.statements_version == ""
    assert case.basis == ""
    received = AuditEvent.objects.get(stream=case.audit_stream(), action="case.received")
    assert received.data["sworn"] is False
    assert received.data["statements"] == []
    assert received.data["statements_version"] is None


def test_duplicate_urls_in_one_request_make_one_target(submit: Any, item: Any) -> None:
    result = submit(urls=[item.source_url, item.source_url + "#x", item.source_url.upper()])
    # The upper-cased path is a different URL (paths are case-sensitive): not found.
    states = sorted(t.state for t in result.case.targets.all())
    assert states == [TargetState.NOT_FOUND, TargetState.PENDING]


# --- The clock ---------------------------------------------------------------------------


@pytest.mark.smoke
@pytest.mark.parametrize("channel", ["email", "api", "staff"])
def test_clock_starts_at_receipt(
    submit: Any, outlet: Outlet, item: Any, frozen: Any, channel: str
) -> None:
    result = submit(
        channel=channel,
        urls=[item.source_url],
        outlet=outlet if channel == "api" else None,
        email="someone@example.org",
    )
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.received_at == NOW
    assert case.clock_started_at == NOW
    assert case.deadline_seconds == settings.TAKEDOWN_DEADLINE == 86400
    assert case.deadline_at == NOW + timedelta(seconds=86400)
    assert case.confirm_by is None
    received = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.received")
    assert received.data["deadline_seconds"] == 86400
    assert received.data["deadline_at"] == audit.format_time(NOW + timedelta(days=1))


@pytest.mark.parametrize("length", [120, 3600, 7 * 86400])
def test_deadline_scales_with_the_setting(submit: Any, item: Any, frozen: Any, length: int) -> None:
    with override_settings(TAKEDOWN_DEADLINE=length):
        result = submit(urls=[item.source_url], email=f"owner{length}@example.org")
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.deadline_seconds == length
    assert case.deadline_at == NOW + timedelta(seconds=length)


@pytest.mark.smoke
def test_web_request_waits_for_confirmation_without_a_clock(
    submit: Any, item: Any, frozen: Any
) -> None:
    result = submit(channel="web", urls=[item.source_url])
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.state == CaseState.AWAITING_CONFIRMATION
    assert case.clock_started_at is None
    assert case.deadline_at is None
    assert case.deadline_seconds is None
    assert case.confirm_by == NOW + timedelta(seconds=settings.CONFIRMATION_WINDOW)
    assert case.requester.email_verified_at is None

    frozen.shift(timedelta(hours=3))
    confirmed = takedown_confirm(case=case)
    confirmed_at = NOW + timedelta(hours=3)

    case.refresh_from_db()
    assert confirmed.pk == case.pk
    assert case.state == CaseState.IN_REVIEW
    assert case.received_at == NOW
    assert case.clock_started_at == confirmed_at
    assert case.deadline_seconds == 86400
    assert case.deadline_at == confirmed_at + timedelta(days=1)
    case.requester.refresh_from_db()
    assert case.requester.email_verified_at == confirmed_at
    actions = list(
        AuditEvent.objects.filter(stream=f"case:{case.reference}").values_list("action", flat=True)
    )
    assert actions == ["case.received", "case.open", "case.in_review"]
    audit.verify()


def test_confirming_twice_is_refused(submit: Any, item: Any) -> None:
    result = submit(channel="web", urls=[item.source_url])
    takedown_confirm(case=result.case)
    before = counts()
    with pytest.raises(TransitionNotAllowed):
        takedown_confirm(case=result.case)
    assert counts() == before


def test_late_confirmation_is_refused(submit: Any, item: Any, frozen: Any) -> None:
    result = submit(channel="web", urls=[item.source_url])
    frozen.shift(timedelta(seconds=settings.CONFIRMATION_WINDOW))
    takedown_confirm(case=result.case)  # at confirm_by exactly: still in time
    late = submit(channel="web", urls=[item.source_url], email="late@example.org")
    frozen.shift(timedelta(seconds=settings.CONFIRMATION_WINDOW, microseconds=1))
    before = counts()
    with pytest.raises(DomainError) as excinfo:
        takedown_confirm(case=late.case)
    assert excinfo.value.code == "confirmation_expired"
    assert counts() == before
    late.case.refresh_from_db()
    assert late.case.state == CaseState.AWAITING_CONFIRMATION
    assert late.case.clock_started_at is None


def test_confirmed_web_request_from_the_outlet_is_trusted(
    submit: Any, item: Any, outlet: Outlet
) -> None:
    result = submit(channel="web", urls=[item.source_url], email="ed@telegraph.co.uk")
    case = takedown_confirm(case=result.case)
    case.refresh_from_db()
    assert case.state == CaseState.APPROVED
    assert case.trusted


def test_staff_vouched_web_request_starts_the_clock(submit: Any, item: Any, frozen: Any) -> None:
    result = submit(channel="web", urls=[item.source_url], email_verified=True)
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.state == CaseState.IN_REVIEW
    assert case.deadline_at == NOW + timedelta(days=1)


# --- Trust -------------------------------------------------------------------------------


@pytest.mark.smoke
def test_staff_entered_request_from_the_outlet_is_approved_at_once(
    submit: Any, item: Any, outlet: Outlet
) -> None:
    assert item.source_domain == "www.telegraph.co.uk"
    result = submit(
        channel="staff",
        email="ed@telegraph.co.uk",
        urls=[item.source_url],
        email_verified=True,
        actor="staff:cli",
    )
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.trusted
    assert case.state == CaseState.APPROVED
    assert case.decided_at is not None
    approved = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.approved")
    assert approved.actor == "system:trust"
    assert approved.data["rule"] == "staff_mail_domain"
    assert approved.data["domains"] == ["telegraph.co.uk"]
    assert approved.data["outlets"] == ["telegraph"]
    received = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.received")
    assert received.actor == "staff:cli"


@pytest.mark.parametrize(
    "email",
    [
        "ed@telegraph.co.uk.evil.com",
        "ed@evil-telegraph.co.uk",
        "ed@telegraph.co",
        "ed@eviltelegraph.co.uk",
        "ed@co.uk",
    ],
)
def test_lookalike_domains_are_not_trusted(
    submit: Any, item: Any, outlet: Outlet, email: str
) -> None:
    result = submit(channel="staff", email=email, urls=[item.source_url], email_verified=True)
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert not case.trusted
    assert case.state == CaseState.IN_REVIEW


def test_unverified_email_from_the_real_domain_is_not_trusted(
    submit: Any, item: Any, outlet: Outlet
) -> None:
    result = submit(channel="email", email="ed@telegraph.co.uk", urls=[item.source_url])
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert not case.trusted
    assert case.state == CaseState.IN_REVIEW


def test_earlier_verification_does_not_trust_a_later_email(
    submit: Any, item: Any, outlet: Outlet
) -> None:
    """The From line of an email can be forged: each request is judged on its own channel."""
    RequesterFactory.create(email="ed@telegraph.co.uk", email_verified_at=timezone.now())
    result = submit(channel="email", email="ed@telegraph.co.uk", urls=[item.source_url])
    assert result.case.state == CaseState.IN_REVIEW


def test_unverified_outlet_domain_is_not_trusted(submit: Any, db: None) -> None:
    outlet = OutletFactory.create(slug="unverified", is_partner=True)
    OutletDomainFactory.create(outlet=outlet, domain="unverified.example", verified_at=None)
    item = ContentItemFactory.create(outlet=outlet, source_domain="www.unverified.example")
    by_staff = submit(
        channel="staff",
        email="ed@unverified.example",
        urls=[item.source_url],
        email_verified=True,
    )
    assert by_staff.case.state == CaseState.IN_REVIEW
    by_api = submit(channel="api", outlet=outlet, urls=[item.source_url], email="p@x.example")
    assert by_api.case.state == CaseState.IN_REVIEW


@pytest.mark.smoke
def test_partner_is_trusted_for_its_own_content(submit: Any, item: Any, outlet: Outlet) -> None:
    assert outlet.is_partner
    result = submit(
        channel="api", outlet=outlet, email="legal@agency.example", urls=[item.source_url]
    )
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert case.trusted
    assert case.state == CaseState.APPROVED
    assert case.outlet == outlet
    approved = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.approved")
    assert approved.data["rule"] == "partner_verified_domain"
    received = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.received")
    assert received.actor == "partner:telegraph"


def test_partner_is_not_trusted_for_another_outlets_content(
    submit: Any, item: Any, outlet: Outlet
) -> None:
    theirs = ContentItemFactory.create(outlet=bbc(), source_domain="www.bbc.co.uk")
    result = submit(
        channel="api", outlet=outlet, email="legal@telegraph.co.uk", urls=[theirs.source_url]
    )
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert not case.trusted
    assert case.state == CaseState.IN_REVIEW


def test_non_partner_outlet_is_not_trusted(submit: Any, db: None) -> None:
    from tests.factories import telegraph

    outlet = telegraph(partner=False)
    item = ContentItemFactory.create(outlet=outlet)
    result = submit(channel="api", outlet=outlet, urls=[item.source_url])
    assert result.case.state == CaseState.IN_REVIEW


@pytest.mark.parametrize(
    ("channel", "verified"), [("staff", True), ("api", False)], ids=["staff", "partner"]
)
def test_mixed_trusted_and_untrusted_items_go_to_review(
    submit: Any, item: Any, outlet: Outlet, channel: str, verified: bool
) -> None:
    theirs = ContentItemFactory.create(outlet=bbc(), source_domain="www.bbc.co.uk")
    result = submit(
        channel=channel,
        outlet=outlet if channel == "api" else None,
        email="ed@telegraph.co.uk",
        email_verified=verified,
        urls=[item.source_url, theirs.source_url],
    )
    case = TakedownRequest.objects.get(pk=result.case.pk)
    assert not case.trusted
    assert case.state == CaseState.IN_REVIEW


def test_decide_trust_needs_items(outlet: Outlet) -> None:
    assert (
        decide_trust(items=[], outlet=outlet, email="desk@telegraph.co.uk", email_verified=True)
        is None
    )


def test_audit_event_data_is_json_and_names_the_requester_by_id(submit: Any, item: Any) -> None:
    result = submit(urls=[item.source_url])
    received = AuditEvent.objects.get(
        stream=f"case:{result.case.reference}", action="case.received"
    )
    assert received.data["requester"] == f"requester:{result.case.requester_id}"
    assert "owner@example.org" not in json.dumps(received.data)


# --- Rules tightened after review -----------------------------------------------------------


def test_a_source_domain_that_hands_out_mail_is_not_trusted_by_itself(submit: Any) -> None:
    """web.de publishes news and gives out free mailboxes: only a verified domain vouches."""
    portal = OutletFactory.create(name="Portal", slug="portal")
    item = ContentItemFactory.create(
        outlet=portal, source_domain="web.de", source_url="https://web.de/magazine/story/"
    )
    case = submit(
        channel="staff", email="anyone@web.de", urls=[item.source_url], email_verified=True
    ).case
    assert not case.trusted
    assert case.state == CaseState.IN_REVIEW


@override_settings(TAKEDOWN_MAX_DOMAIN_ITEMS=2)
def test_whole_domain_request_is_capped(submit: Any, outlet: Any) -> None:
    ContentItemFactory.create_batch(3, outlet=outlet)
    before = counts()
    error = refused(submit, whole_domain="telegraph.co.uk")
    assert "whole_domain" in error.errors
    assert "3 articles" in error.errors["whole_domain"]
    assert counts() == before


def test_our_public_url_with_www_resolves(submit: Any, item: Any) -> None:
    case = submit(urls=[f"https://www.news.example/a/{item.slug}/"]).case
    assert case.targets.get().content_item_id == item.pk
