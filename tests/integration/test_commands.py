"""The management commands: seed_demo, takedown submit/show/list, audit_verify, audit_checkpoint."""

from __future__ import annotations

import getpass
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.management import execute_from_command_line
from django.db import connection, connections
from django.utils import timezone

from rights.management.commands.seed_demo import ANCHOR, EXAMPLE_SLUG, SPREAD
from rights.models import (
    AuditEvent,
    ContentItem,
    Outlet,
    OutletDomain,
    Requester,
    TakedownRequest,
    Target,
)
from rights.normalise import host_of, normalise_url
from rights.workflow import transition

GMAIL = "someone.random@gmail.com"


def catalogue_snapshot() -> dict[str, Any]:
    return {
        "outlets": list(Outlet.objects.order_by("slug").values_list("slug", "name", "is_partner")),
        "domains": list(
            OutletDomain.objects.order_by("domain").values_list(
                "domain", "outlet__slug", "verified_at"
            )
        ),
        "items": list(
            ContentItem.objects.order_by("slug").values_list(
                "slug", "source_url", "title", "body", "status", "published_at", "updated_at"
            )
        ),
    }


def nothing_written() -> bool:
    """No case, target or requester, and nothing in the trail but the catalogue's own streams
    (seeding the demo catalogue audits the outlets' trust settings)."""
    return (
        not any(model.objects.exists() for model in (TakedownRequest, Target, Requester))
        and not AuditEvent.objects.exclude(stream__startswith="outlet:").exists()
    )


def submit(run_command: Any, *args: str) -> Any:
    return run_command("takedown", "submit", *args)


# --- seed_demo ----------------------------------------------------------------------------


@pytest.mark.smoke
def test_seed_demo_is_idempotent(run_command: Any) -> None:
    first = run_command("seed_demo")
    snapshot = catalogue_snapshot()
    second = run_command("seed_demo")

    assert first.code == second.code == 0
    assert catalogue_snapshot() == snapshot
    assert "(0 new)" in second.stdout
    assert "561 content items (0 new)" in second.stdout
    assert len(snapshot["outlets"]) >= 6
    assert 300 <= len(snapshot["items"]) <= 1000
    assert sum(partner for _slug, _name, partner in snapshot["outlets"]) >= 2
    assert all(verified_at is not None for _d, _o, verified_at in snapshot["domains"])

    item = ContentItem.objects.select_related("outlet").get(slug=EXAMPLE_SLUG)
    assert item.source_url == (
        "https://www.telegraph.co.uk/news/2026/11/20/hedgehog-crossing-saves-village-fete/"
    )
    assert item.source_domain == "www.telegraph.co.uk"
    assert item.outlet is not None
    assert item.outlet.slug == "telegraph"
    assert item.outlet.domains.filter(domain="telegraph.co.uk").exists()
    assert f"example public URL: {item.public_url}" in first.stdout
    assert f"example source URL: {item.source_url}" in first.stdout


def test_seed_demo_urls_are_normalised_and_domains_are_hosts(demo_catalogue: ContentItem) -> None:
    items = ContentItem.objects.values_list("source_url", "source_domain", "published_at")
    for source_url, source_domain, published_at in items:
        assert normalise_url(source_url) == source_url
        assert host_of(source_url) == source_domain
        assert ANCHOR - SPREAD <= published_at <= ANCHOR
    assert len({domain for _, domain, _ in items}) == 7


def test_seed_demo_leaves_existing_items_alone(
    demo_catalogue: ContentItem, run_command: Any
) -> None:
    transition(demo_catalogue, "removed", actor="test")
    assert run_command("seed_demo", verbosity=0).code == 0
    demo_catalogue.refresh_from_db()
    assert demo_catalogue.status == "removed"


# --- takedown submit ----------------------------------------------------------------------


@pytest.mark.smoke
def test_submit_from_the_outlet_is_trusted_and_approved(
    demo_catalogue: ContentItem, run_command: Any
) -> None:
    before = timezone.now()
    result = submit(
        run_command,
        "--url",
        demo_catalogue.source_url,
        "--email",
        "ed@telegraph.co.uk",
        "--name",
        "Ed Itor",
        "--organisation",
        "The Telegraph",
    )
    after = timezone.now()

    assert result.code == 0, result.stderr
    body = result.json()
    assert body["state"] == "approved"
    assert body["trusted"] is True
    assert body["channel"] == "staff"
    assert body["created"] is True
    assert body["merged"] == []
    assert re.fullmatch(r"TD-[2-9A-Z]{7}", body["reference"])
    deadline = datetime.fromisoformat(body["deadline_at"])
    started = datetime.fromisoformat(body["clock_started_at"])
    length = timedelta(seconds=settings.TAKEDOWN_DEADLINE)
    assert deadline - started == length
    assert before + length <= deadline <= after + length
    assert deadline.utcoffset() == timedelta(0)
    assert body["closed_at"] is None
    assert [(t["url"], t["state"], t["content_item"]) for t in body["targets"]] == [
        (demo_catalogue.source_url, "pending", EXAMPLE_SLUG)
    ]

    case = TakedownRequest.objects.select_related("requester").get(reference=body["reference"])
    assert case.channel == "staff"
    assert case.requester.email_verified_at is not None  # staff vouch for the address
    # Entered by whoever ran the command: the operating-system login, never an anonymous actor.
    received = AuditEvent.objects.get(stream=case.audit_stream(), action="case.received")
    assert received.actor == f"os:{getpass.getuser()}"
    # Staff enter what the requester swore, and nothing else.
    assert case.statements == []
    assert received.data["sworn"] is False


def test_submit_names_the_staff_member_and_records_only_the_statements_given(
    demo_catalogue: ContentItem, run_command: Any, django_user_model: Any
) -> None:
    staff = django_user_model.objects.create_user("ines", is_staff=True)
    result = submit(
        run_command,
        "--url",
        demo_catalogue.source_url,
        "--email",
        "someone@example.org",
        "--name",
        "Someone",
        "--basis",
        "copyright",
        "--statement",
        "owner_or_agent",
        "--staff",
        "ines",
    )
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["statements"] == ["owner_or_agent"]
    case = TakedownRequest.objects.get(reference=body["reference"])
    received = AuditEvent.objects.get(stream=case.audit_stream(), action="case.received")
    assert received.actor == f"staff:{staff.pk}"
    assert received.data["statements"] == ["owner_or_agent"]


@pytest.mark.parametrize(
    ("args", "named"),
    [(("--staff", "nobody"), "nobody"), (("--statement", "made_up"), "--statement")],
)
def test_submit_refuses_an_unknown_staff_member_or_statement(
    demo_catalogue: ContentItem, run_command: Any, args: tuple[str, ...], named: str
) -> None:
    result = submit(
        run_command,
        "--url",
        demo_catalogue.source_url,
        "--email",
        "someone@example.org",
        "--name",
        "Someone",
        *args,
    )
    assert result.code == 2
    assert named in result.stderr
    assert nothing_written()


def test_submit_from_an_unknown_address_goes_to_review(
    demo_catalogue: ContentItem, run_command: Any
) -> None:
    result = submit(
        run_command, "--url", demo_catalogue.public_url, "--email", GMAIL, "--name", "Someone"
    )
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["state"] == "in_review"
    assert body["trusted"] is False
    assert body["deadline_at"] is not None
    assert body["targets"][0]["content_item"] == EXAMPLE_SLUG


def test_submit_the_same_url_again_is_merged(demo_catalogue: ContentItem, run_command: Any) -> None:
    args = ("--url", demo_catalogue.source_url, "--email", GMAIL, "--name", "Someone")
    first = submit(run_command, *args).json()
    again = submit(run_command, *args).json()
    assert again["created"] is False
    assert again["reference"] == first["reference"]
    assert again["merged"] == [{"url": demo_catalogue.source_url, "reference": first["reference"]}]


def test_submit_a_whole_domain(demo_catalogue: ContentItem, run_command: Any) -> None:
    result = submit(
        run_command,
        "--domain",
        "elpais.com",
        "--email",
        "abogada@example.es",
        "--name",
        "Abogada",
        "--basis",
        "privacy",
    )
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["whole_domain"] == "elpais.com"
    expected = ContentItem.objects.filter(source_domain="elpais.com").count()
    assert expected > 0
    assert len(body["targets"]) == expected
    assert all(t["url"].startswith("https://elpais.com/") for t in body["targets"])


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--url", "javascript:alert(1)", "--email", GMAIL, "--name", "X"), "--url"),
        (("--url", "https://www.telegraph.co.uk/news/x/", "--name", "X"), "--email"),
        (("--url", "https://www.telegraph.co.uk/news/x/", "--email", "not-an-email"), "--email"),
        (("--email", GMAIL, "--name", "X"), "--url"),
        (
            (
                "--url",
                "https://www.telegraph.co.uk/a/",
                "--email",
                GMAIL,
                "--name",
                "X",
                "--basis",
                "whim",
            ),
            "--basis",
        ),
        (("--domain", "nothing-here.example", "--email", GMAIL, "--name", "X"), "--domain"),
    ],
    ids=["javascript-url", "missing-email", "bad-email", "no-url", "bad-basis", "empty-domain"],
)
def test_submit_refuses_bad_input_and_writes_nothing(
    demo_catalogue: ContentItem, run_command: Any, args: tuple[str, ...], named: str
) -> None:
    result = submit(run_command, *args)
    assert result.code == 2
    assert result.stdout == ""
    assert f"{named}" in result.stderr
    assert "not accepted" in result.stderr
    assert nothing_written()


def test_submit_names_every_field_at_fault(run_command: Any) -> None:
    result = submit(run_command, "--url", "javascript:alert(1)", "--url", "ftp://x.example/")
    assert result.code == 2
    for named in ("--email: is required", "--name: is required"):
        assert named in result.stderr
    assert "--url 'javascript:alert(1)': must start with http:// or https://" in result.stderr
    assert "--url 'ftp://x.example/'" in result.stderr
    assert nothing_written()


def test_submit_exit_status_on_the_command_line(
    db: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Any
) -> None:
    """The real entry point: argv in, exit status 2 and the field on stderr out."""
    # manage.py closes every connection on the way out; keep the test's transaction open.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    # Its django.setup() would configure logging again, onto this test's captured stderr, which
    # is closed once the test ends: the rest of the session would log into a closed file.
    settings.LOGGING_CONFIG = None
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(
            [
                "manage.py",
                "takedown",
                "submit",
                "--url",
                "https://www.telegraph.co.uk/n/",
                "--name",
                "X",
            ]
        )
    assert exit_info.value.code == 2
    assert "--email: is required" in capsys.readouterr().err
    assert nothing_written()


# --- takedown show / list -----------------------------------------------------------------


def test_show_prints_the_case_and_its_targets(
    demo_catalogue: ContentItem, run_command: Any
) -> None:
    submitted = submit(
        run_command,
        "--url",
        demo_catalogue.source_url,
        "--url",
        "https://www.telegraph.co.uk/news/2026/11/21/never-republished/",
        "--email",
        GMAIL,
        "--name",
        "Someone",
    ).json()

    result = run_command("takedown", "show", submitted["reference"].lower())
    assert result.code == 0, result.stderr
    body = result.json()
    for key in (
        "reference",
        "state",
        "channel",
        "basis",
        "trusted",
        "received_at",
        "clock_started_at",
        "deadline_at",
        "closed_at",
    ):
        assert body[key] == submitted[key], key
    shown = [{k: t[k] for k in ("url", "state", "content_item")} for t in body["targets"]]
    assert shown == [
        {"url": demo_catalogue.source_url, "state": "pending", "content_item": EXAMPLE_SLUG},
        {
            "url": "https://www.telegraph.co.uk/news/2026/11/21/never-republished/",
            "state": "not_found",
            "content_item": None,
        },
    ]
    assert body["targets"][1]["meaning"].startswith("Not on our site under any spelling")


def test_show_an_unknown_reference_fails_clearly(run_command: Any) -> None:
    result = run_command("takedown", "show", "TD-NOSUCH1")
    assert result.code != 0
    assert result.stdout == ""
    assert "no case with reference 'TD-NOSUCH1'" in result.stderr


def test_list_is_newest_first_and_open_leaves_closed_cases_out(
    demo_catalogue: ContentItem, run_command: Any
) -> None:
    other = ContentItem.objects.exclude(pk=demo_catalogue.pk).filter(
        source_domain="www.theguardian.com"
    )[:2]
    older = submit(
        run_command, "--url", demo_catalogue.source_url, "--email", GMAIL, "--name", "A"
    ).json()
    newer = submit(
        run_command,
        *[arg for item in other for arg in ("--url", item.source_url)],
        "--email",
        "editor@theguardian.com",
        "--name",
        "B",
    ).json()
    transition(TakedownRequest.objects.get(reference=older["reference"]), "withdrawn", actor="test")

    everything = run_command("takedown", "list")
    assert everything.code == 0
    listed = everything.json()
    assert [c["reference"] for c in listed] == [newer["reference"], older["reference"]]
    assert listed[0] == {
        "reference": newer["reference"],
        "state": "approved",
        "channel": "staff",
        "trusted": True,
        "received_at": newer["received_at"],
        "deadline_at": newer["deadline_at"],
        "closed_at": None,
        "target_count": 2,
    }
    assert listed[1]["state"] == "withdrawn"
    assert listed[1]["closed_at"] is not None
    assert listed[1]["target_count"] == 1

    open_only = run_command("takedown", "list", "--open").json()
    assert [c["reference"] for c in open_only] == [newer["reference"]]


def test_list_of_nothing_is_an_empty_array(run_command: Any) -> None:
    assert run_command("takedown", "list").json() == []


# --- audit_verify / audit_checkpoint ------------------------------------------------------


@pytest.fixture
def some_history(demo_catalogue: ContentItem, run_command: Any) -> list[str]:
    references = []
    for email in ("ed@telegraph.co.uk", GMAIL):
        result = submit(
            run_command, "--url", demo_catalogue.source_url, "--email", email, "--name", "N"
        )
        references.append(result.json()["reference"])
    return references


def test_audit_verify_reports_an_intact_trail(some_history: list[str], run_command: Any) -> None:
    events = AuditEvent.objects.count()
    streams = AuditEvent.objects.values("stream").distinct().count()
    result = run_command("audit_verify")
    assert result.code == 0
    assert result.stdout.strip() == (
        f"audit trail intact: {events} events in {streams} streams verified (0 signed checkpoints)"
    )

    signed = run_command("audit_checkpoint")
    assert signed.code == 0
    assert signed.stdout.startswith("signed checkpoint ")
    for reference in some_history:
        assert f"case:{reference} up to #" in signed.stdout
    assert "(1 signed checkpoint)" in run_command("audit_verify").stdout


def test_audit_checkpoint_with_nothing_to_sign(run_command: Any) -> None:
    result = run_command("audit_checkpoint")
    assert result.code == 0
    assert "nothing to sign" in result.stdout


def _tamper(sql: str, params: list[Any]) -> None:
    """Change the trail behind the application's back, as someone with table access could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rights_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE rights_auditevent ENABLE TRIGGER USER")


@pytest.mark.parametrize(
    ("tampering", "reason"),
    [
        ("UPDATE rights_auditevent SET actor = 'mallory' WHERE id = %s", "was modified"),
        ("DELETE FROM rights_auditevent WHERE id = %s", "deleted or inserted"),
    ],
    ids=["modified", "deleted"],
)
def test_audit_verify_names_the_first_bad_event(
    some_history: list[str], run_command: Any, tampering: str, reason: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("tampering with the triggers disabled is a PostgreSQL feature")
    assert run_command("audit_verify").code == 0
    stream = f"case:{some_history[0]}"
    first, second = AuditEvent.objects.filter(stream=stream).order_by("seq")[:2]
    _tamper(tampering, [first.pk])

    result = run_command("audit_verify")
    assert result.code == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("audit trail BROKEN: ")
    bad = first if "modified" in reason else second
    assert f"event id={bad.pk} (stream '{stream}', seq {bad.seq})" in line
    assert reason in line
