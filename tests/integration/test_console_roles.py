"""Staff roles in the console: each role against each page and action, logins locked out after
repeated failures (django-axes) and let back in after the cool-off, and `staff_user create`."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rights.models import (
    AuditEvent,
    Outlet,
    OutletDomain,
    RemovalEffect,
    Requester,
    Suppression,
    TakedownRequest,
)
from rights.states import CaseState, TargetState
from tests.factories import TakedownRequestFactory, TargetFactory, telegraph
from tests.integration.conftest import CommandRun
from tests.integration.test_review_queue import ensure_roles, staff_in

PASSWORD = "a long and unguessable passphrase"
LOGIN = reverse("admin:login")
QUEUE = reverse("admin:rights_takedownrequest_changelist")
ROLES = ["reviewer", "lead", "admin"]


def url(model: type[Any], view: str, *args: Any) -> str:
    return reverse(f"admin:rights_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(db: None) -> dict[str, User]:
    return {role: staff_in(role, f"{role}-1") for role in ROLES}


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clients(staff: dict[str, User]) -> dict[str, Client]:
    return {role: client_for(user) for role, user in staff.items()}


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    """An outlet with a domain, an open case, and a case whose content was removed."""
    outlet = telegraph()
    open_case = TakedownRequestFactory.create()
    TargetFactory.create(case=open_case)
    removed = TakedownRequestFactory.create(state=CaseState.REMOVED)
    TargetFactory.create(case=removed, state=TargetState.REMOVED)
    return {
        "outlet": outlet,
        "domain": outlet.domains.get(),
        "open": open_case,
        "removed": removed,
        "requester": open_case.requester,
    }


# --- The groups ---------------------------------------------------------------------------------


def perms_of(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_the_migration_makes_three_roles_with_their_permissions(db: None) -> None:
    ensure_roles()
    reviewer, lead, admin = perms_of("reviewer"), perms_of("lead"), perms_of("admin")
    acts = {
        "rights.decide_case",
        "rights.decide_appeal",
        "rights.assign_case",
    }
    assert acts <= reviewer
    assert reviewer.isdisjoint(
        {
            "rights.restore_case",
            "rights.suspend_requester",
            "rights.erase_requester",
            "rights.view_sla_dashboard",
            "rights.change_outlet",
            "rights.change_requester",
        }
    )
    assert reviewer < lead
    assert lead - reviewer == {
        "rights.restore_case",
        "rights.suspend_requester",
        "rights.view_sla_dashboard",
        "rights.retry_removaleffect",
        "rights.view_raw_inboundmessage",
        "rights.retry_webhookdelivery",
    }
    # The mailbox's queue: every role sees it, reviewers and leads deal with it, leads alone
    # read a message's raw source.
    assert "rights.triage_inboundmessage" in reviewer
    assert "rights.view_raw_inboundmessage" not in reviewer | admin
    assert "rights.triage_inboundmessage" not in admin
    assert {
        "rights.add_outlet",
        "rights.change_outlet",
        "rights.delete_outlet",
        "rights.add_outletdomain",
        "rights.change_outletdomain",
        "rights.delete_outletdomain",
        "rights.change_rightscontact",
        "rights.add_suppression",
        "rights.change_suppression",
        "rights.erase_requester",
        "rights.manage_partner_keys",
        "axes.delete_accessattempt",
    } <= admin
    assert admin.isdisjoint(acts | {"rights.restore_case", "rights.suspend_requester"})
    # Every role sees every page of the console.
    for perms in (reviewer, lead, admin):
        assert {
            "rights.view_takedownrequest",
            "rights.view_auditevent",
            "rights.view_inboundmessage",
        } <= perms


# --- Pages ------------------------------------------------------------------------------------

# (page, reviewer, lead, admin): the status code each role gets.
PAGES: list[tuple[str, int, int, int]] = [
    ("index", 302, 200, 200),  # a reviewer's front page is the queue
    ("queue", 200, 200, 200),
    ("case", 200, 200, 200),
    ("requester", 200, 200, 200),
    ("outlets", 200, 200, 200),
    ("outlet add", 403, 403, 200),
    ("outlet change", 200, 200, 200),  # a view-only page for those who may not change it
    ("suppression add", 403, 403, 200),  # the admin role makes rules by hand, with a reason
    ("audit trail", 200, 200, 200),
    ("removal effects", 200, 200, 200),
    ("login attempts", 403, 403, 200),
]


def page_url(name: str, world: dict[str, Any]) -> str:
    return {
        "index": reverse("admin:index"),
        "queue": QUEUE,
        "case": url(TakedownRequest, "change", world["open"].pk),
        "requester": url(Requester, "change", world["requester"].pk),
        "outlets": url(Outlet, "changelist"),
        "outlet add": url(Outlet, "add"),
        "outlet change": url(Outlet, "change", world["outlet"].pk),
        "suppression add": url(Suppression, "add"),
        "audit trail": reverse("admin:rights_auditevent_changelist"),
        "removal effects": url(RemovalEffect, "changelist"),
        "login attempts": reverse("admin:axes_accessattempt_changelist"),
    }[name]


@pytest.mark.parametrize(("page", "reviewer", "lead", "admin"), PAGES, ids=[p[0] for p in PAGES])
def test_each_role_against_each_page(
    clients: dict[str, Client],
    world: dict[str, Any],
    page: str,
    reviewer: int,
    lead: int,
    admin: int,
) -> None:
    target = page_url(page, world)
    got = {role: clients[role].get(target).status_code for role in ROLES}
    assert got == {"reviewer": reviewer, "lead": lead, "admin": admin}


def test_staff_without_a_role_see_nothing(world: dict[str, Any]) -> None:
    nobody = get_user_model().objects.create_user("no-role", is_staff=True)
    client = client_for(nobody)
    assert client.get(QUEUE).status_code == 403
    assert client.get(url(Outlet, "changelist")).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "Review queue" not in index


def test_reviewers_land_on_the_queue_and_leads_on_a_front_page_leading_with_it(
    clients: dict[str, Client],
) -> None:
    landing = clients["reviewer"].get(reverse("admin:index"))
    assert landing.status_code == 302
    assert landing["Location"] == QUEUE
    lead = clients["lead"].get(reverse("admin:index")).content.decode()
    assert 'data-testid="review-queue"' in lead
    assert f'href="{QUEUE}?mine=1"' in lead
    admin = clients["admin"].get(reverse("admin:index")).content.decode()
    assert 'data-testid="review-queue"' not in admin


# --- Actions ------------------------------------------------------------------------------------


def actions_on(client: Client, changelist: str) -> set[str]:
    response = client.get(changelist)
    assert response.status_code == 200
    form = response.context["action_form"]
    if form is None:
        return set()  # no action at all
    return {name for name, _ in form.fields["action"].choices if name}


def test_each_role_gets_its_own_actions(clients: dict[str, Client], world: dict[str, Any]) -> None:
    reviewer = {"claim_selected", "assign_selected", "approve_selected", "reject_selected"}
    assert actions_on(clients["reviewer"], QUEUE) == reviewer
    assert actions_on(clients["lead"], QUEUE) == reviewer | {"restore_selected"}
    assert actions_on(clients["admin"], QUEUE) == set()

    effects = url(RemovalEffect, "changelist")
    assert "retry_dead_letters" not in actions_on(clients["reviewer"], effects)
    assert "retry_dead_letters" in actions_on(clients["lead"], effects)


def post_action(client: Client, name: str, case: TakedownRequest, **extra: Any) -> Any:
    return client.post(
        f"{QUEUE}?show=all",
        {"action": name, "post": "yes", "_selected_action": [case.pk], **extra},
    )


def test_a_reviewer_decides_and_assigns(
    clients: dict[str, Client], staff: dict[str, User], world: dict[str, Any]
) -> None:
    case = world["open"]
    post_action(clients["reviewer"], "claim_selected", case)
    case.refresh_from_db()
    assert case.assignee_id == staff["reviewer"].pk
    done = post_action(clients["reviewer"], "approve_selected", case)
    assert done.status_code == 200
    case.refresh_from_db()
    assert case.state == CaseState.APPROVED


def test_a_reviewer_cannot_restore_and_a_lead_can(
    clients: dict[str, Client], staff: dict[str, User], world: dict[str, Any]
) -> None:
    case = world["removed"]
    reasons = {"reasons": "Removed in error: the requester was not the owner."}
    refused = post_action(clients["reviewer"], "restore_selected", case, **reasons)
    assert refused.status_code == 403  # not one of theirs
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert not AuditEvent.objects.filter(action="case.restored").exists()

    # The admin role has no actions on cases at all: the post is refused, decides nothing.
    assert post_action(clients["admin"], "approve_selected", world["open"]).status_code == 403
    assert TakedownRequest.objects.get(pk=world["open"].pk).state == CaseState.OPEN

    restored = post_action(clients["lead"], "restore_selected", case, **reasons)
    assert restored.status_code == 200
    assert "1 case restored" in restored.content.decode()
    case.refresh_from_db()
    assert case.state == CaseState.RESTORED
    event = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.restored")
    assert event.actor == f"staff:{staff['lead'].pk}"


def test_restore_is_refused_where_nothing_was_removed(
    clients: dict[str, Client], staff: dict[str, User]
) -> None:
    appeal = TakedownRequestFactory.create(
        state=CaseState.APPEALED, appeal_round=1, first_decided_by=staff["reviewer"]
    )
    TargetFactory.create(case=appeal, state=TargetState.PENDING)
    page = post_action(clients["lead"], "restore_selected", appeal, reasons="In error.")
    assert "there is nothing to restore" in page.content.decode()
    appeal.refresh_from_db()
    assert appeal.state == CaseState.APPEALED


def test_deciding_an_appeal_needs_its_own_permission(
    staff: dict[str, User], world: dict[str, Any]
) -> None:
    """A reviewer stripped of `decide_appeal` still decides cases, but not appeals."""
    user = staff_in("reviewer", "cases-only")
    user.user_permissions.clear()
    group = Group.objects.create(name="cases-only")
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="rights",
            codename__in=["view_takedownrequest", "decide_case"],
        )
    )
    user.groups.set([group])
    appeal = TakedownRequestFactory.create(
        state=CaseState.APPEALED, appeal_round=1, first_decided_by=staff["lead"]
    )
    client = client_for(get_user_model().objects.get(pk=user.pk))
    page = post_action(client, "approve_selected", appeal)
    assert "you may not decide appeals" in page.content.decode()
    appeal.refresh_from_db()
    assert appeal.state == CaseState.APPEALED
    post_action(client, "approve_selected", world["open"])
    assert TakedownRequest.objects.get(pk=world["open"].pk).state == CaseState.APPROVED


def test_only_admin_edits_outlets_and_domains(
    clients: dict[str, Client], staff: dict[str, User], world: dict[str, Any]
) -> None:
    outlet: Outlet = world["outlet"]
    domain: OutletDomain = world["domain"]
    form = {
        "name": "The Daily Telegraph",
        "is_partner": "on",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "1",
        "domains-0-id": str(domain.pk),
        "domains-0-outlet": str(outlet.pk),
        "domains-0-domain": domain.domain,
        # staff_mail_only left off: a change to what decides trust, so the edit is audited.
        # (Verification is not a form field: it is recorded by the domain's verify page.)
        "rights_contacts-TOTAL_FORMS": "0",
        "rights_contacts-INITIAL_FORMS": "0",
    }
    for role in ("reviewer", "lead"):
        assert clients[role].post(url(Outlet, "change", outlet.pk), form).status_code == 403
        page = clients[role].get(url(Outlet, "change", outlet.pk)).content.decode()
        assert 'name="_save"' not in page
    outlet.refresh_from_db()
    assert outlet.name == "The Telegraph"

    response = clients["admin"].post(url(Outlet, "change", outlet.pk), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    outlet.refresh_from_db()
    assert outlet.name == "The Daily Telegraph"
    event = AuditEvent.objects.filter(stream=outlet.audit_stream()).latest("seq")
    assert event.actor == f"staff:{staff['admin'].pk}"


def test_only_admin_edits_a_requester(clients: dict[str, Client], world: dict[str, Any]) -> None:
    requester: Requester = world["requester"]
    form = {"name": "Corrected Name", "organisation": ""}
    for role in ("reviewer", "lead"):
        response = clients[role].post(url(Requester, "change", requester.pk), form)
        assert response.status_code == 403
    assert clients["admin"].post(url(Requester, "change", requester.pk), form).status_code == 302
    requester.refresh_from_db()
    assert requester.name == "Corrected Name"


def test_suspend_and_erase_belong_to_lead_and_admin(staff: dict[str, User]) -> None:
    """The acts themselves come with abuse controls and erasure; who may do them is set now."""
    users = {role: get_user_model().objects.get(pk=u.pk) for role, u in staff.items()}
    table = {
        "rights.suspend_requester": {"lead"},
        "rights.erase_requester": {"admin"},
        "rights.restore_case": {"lead"},
        "rights.view_sla_dashboard": {"lead"},
        "rights.manage_partner_keys": {"admin"},
        "rights.add_suppression": {"admin"},
        "rights.decide_case": {"reviewer", "lead"},
        "rights.decide_appeal": {"reviewer", "lead"},
    }
    for perm, roles in table.items():
        assert {role for role, user in users.items() if user.has_perm(perm)} == roles, perm


# --- Logins -------------------------------------------------------------------------------------


def login(password: str, *, username: str = "reviewer-1", ip: str = "198.51.100.7") -> Any:
    return Client().post(
        LOGIN,
        {"username": username, "password": password, "next": QUEUE},
        REMOTE_ADDR=ip,
    )


def test_the_lockout_defaults(db: None) -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_staff_log_in_with_their_own_account(staff: dict[str, User]) -> None:
    response = login(PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == QUEUE


def test_a_reviewer_who_logs_in_lands_on_the_queue(staff: dict[str, User]) -> None:
    # The login form sends staff to the console's front page (its hidden `next`).
    form = Client().get(LOGIN).content.decode()
    assert f'name="next" value="{reverse("admin:index")}"' in form
    response = Client().post(
        LOGIN,
        {"username": "reviewer-1", "password": PASSWORD, "next": reverse("admin:index")},
        follow=True,
    )
    assert response.redirect_chain[-1] == (QUEUE, 302)
    assert response.status_code == 200


def test_repeated_failed_logins_lock_out_until_the_cool_off(
    staff: dict[str, User],
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert login("wrong").status_code == 200  # the form again, with its error
        locked = login("wrong")
        assert locked.status_code == 429
        assert "Too many failed logins" in locked.content.decode()
        # The right password does not help while locked out.
        assert login(PASSWORD).status_code == 429
        # The lock is for this username from this address only.
        assert login(PASSWORD, ip="203.0.113.9").status_code == 302
        assert login(PASSWORD, username="lead-1").status_code == 302

    with time_machine.travel(start + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        assert login(PASSWORD).status_code == 302


def test_trying_again_while_locked_out_restarts_the_cool_off(
    staff: dict[str, User],
) -> None:
    start = timezone.now()
    cool_off = settings.AXES_COOLOFF_TIME
    with time_machine.travel(start, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            login("wrong")
    with time_machine.travel(start + cool_off / 2, tick=False):
        assert login(PASSWORD).status_code == 429
    # Past the first cool-off, but within the one that the try above restarted (and restarts).
    second = start + cool_off + timedelta(seconds=1)
    with time_machine.travel(second, tick=False):
        assert login(PASSWORD).status_code == 429
    with time_machine.travel(second + cool_off + timedelta(seconds=1)):
        assert login(PASSWORD).status_code == 302


def test_a_successful_login_resets_the_count(staff: dict[str, User]) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login("wrong")
    assert login(PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login("wrong").status_code == 200
    assert login(PASSWORD).status_code == 302


def test_the_locked_out_page_keeps_to_the_content_security_policy(
    staff: dict[str, User],
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = login("wrong")
    assert response.status_code == 429
    html = response.content.decode()
    assert "<script>" not in html
    assert "style=" not in html
    assert "Content-Security-Policy" in response.headers


# --- staff_user create ---------------------------------------------------------------------


def test_staff_user_create_prints_a_one_time_password(run_command: Any) -> None:
    ensure_roles()
    result: CommandRun = run_command(
        "staff_user", "create", "rosa", "--role", "reviewer", "--email", "rosa@news.example"
    )
    assert result.code == 0, result.stderr
    assert "Created staff user rosa (reviewer)." in result.stdout
    password = result.stdout.rsplit(": ", 1)[-1].strip()
    assert len(password) >= 20
    user = get_user_model().objects.get(username="rosa")
    assert user.is_staff
    assert not user.is_superuser
    assert [g.name for g in user.groups.all()] == ["reviewer"]
    assert user.has_perm("rights.decide_case")
    assert not user.has_perm("rights.restore_case")
    assert login(password, username="rosa").status_code == 302


def test_staff_user_create_reads_the_password_from_stdin(
    run_command: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_roles()
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery staple 42\n"))
    result = run_command("staff_user", "create", "lena", "--role", "lead", "--password-stdin")
    assert result.code == 0, result.stderr
    assert "correct horse" not in result.stdout
    assert "Password" not in result.stdout
    user = get_user_model().objects.get(username="lena")
    assert user.check_password("correct horse battery staple 42")
    assert user.has_perm("rights.restore_case")


def test_staff_user_create_refusals(run_command: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_roles()
    assert run_command("staff_user", "create", "ana", "--role", "admin").code == 0
    again = run_command("staff_user", "create", "ana", "--role", "admin")
    assert again.code == 1
    assert "already exists" in again.stderr

    monkeypatch.setattr("sys.stdin", io.StringIO("12345\n"))
    weak = run_command("staff_user", "create", "bo", "--role", "reviewer", "--password-stdin")
    assert weak.code == 1
    assert "password is refused" in weak.stderr
    assert not get_user_model().objects.filter(username="bo").exists()

    Group.objects.filter(name="lead").delete()
    missing = run_command("staff_user", "create", "cy", "--role", "lead")
    assert missing.code == 1
    assert "migrate" in missing.stderr
