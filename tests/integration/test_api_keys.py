"""Partner keys: hashed at rest, shown once (command and console), refused when wrong, expired
or revoked, held to their scope; only the roles holding `manage_partner_keys` manage them."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from rights.models import AuditEvent, KeyScope, Outlet, PartnerKey
from rights.services.partner_keys import partner_key_create, partner_key_revoke
from tests.factories import OutletFactory, telegraph
from tests.integration.conftest import CommandRun
from tests.integration.test_review_queue import staff_in

TAKEDOWNS = "/api/v1/takedowns"
KEY = re.compile(r"rk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_key_is_stored_as_prefix_and_digest_only_and_audited(db: None) -> None:
    outlet = telegraph()
    new = partner_key_create(outlet=outlet, scope=KeyScope.TAKEDOWNS, actor="staff:1")
    assert KEY.fullmatch(new.plaintext)
    prefix, secret = new.plaintext.split(".")
    row = PartnerKey.objects.values().get(pk=new.key.pk)
    assert row["prefix"] == prefix
    assert row["secret_digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())
    event = AuditEvent.objects.get(stream="outlet:telegraph", action="partner_key.created")
    assert event.actor == "staff:1"
    assert event.data["prefix"] == prefix
    assert secret not in str(event.data)
    assert bearer(new.plaintext).get(TAKEDOWNS).status_code == 200


def test_a_wrong_secret_an_expired_or_a_revoked_key_is_refused(db: None) -> None:
    outlet = telegraph()
    new = partner_key_create(
        outlet=outlet, actor="test", expires_at=timezone.now() + timedelta(days=1)
    )
    prefix, secret = new.plaintext.split(".")
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for wrong in (f"{prefix}.{flipped}", f"{prefix}.", prefix, f"{prefix}.{secret}x"):
        assert bearer(wrong).get(TAKEDOWNS).status_code == 401, wrong
    assert bearer(new.plaintext).get(TAKEDOWNS).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        answer = bearer(new.plaintext).get(TAKEDOWNS)
        assert answer.status_code == 401
        assert answer.json()["code"] == "bad_key"
    partner_key_revoke(key=new.key, actor="staff:2")
    assert bearer(new.plaintext).get(TAKEDOWNS).status_code == 401
    partner_key_revoke(key=new.key, actor="staff:2")  # again: nothing more happens
    revoked = AuditEvent.objects.filter(stream="outlet:telegraph", action="partner_key.revoked")
    assert [e.actor for e in revoked] == ["staff:2"]


def test_a_key_is_held_to_its_scope_on_every_endpoint(db: None) -> None:
    outlet = telegraph()
    crawler = bearer(partner_key_create(outlet=outlet, scope="clearance", actor="t").plaintext)
    filer = bearer(partner_key_create(outlet=outlet, scope="takedowns", actor="t").plaintext)
    for method, path in (
        ("get", TAKEDOWNS),
        ("post", TAKEDOWNS),
        ("post", f"{TAKEDOWNS}/batch"),
        ("get", f"{TAKEDOWNS}/TD-XXXXXXX"),
        ("post", f"{TAKEDOWNS}/TD-XXXXXXX/withdraw"),
    ):
        assert getattr(crawler, method)(path, {}, format="json").status_code == 403, path
    assert (
        filer.post("/api/v1/clearance", {"urls": ["https://a.example/"]}, format="json").status_code
        == 403
    )
    assert (
        crawler.post(
            "/api/v1/clearance", {"urls": ["https://a.example/"]}, format="json"
        ).status_code
        == 200
    )


def test_the_command_prints_the_key_once_lists_prefixes_and_revokes(
    db: None, run_command: Any
) -> None:
    telegraph()
    made: CommandRun = run_command(
        "partner_key", "create", "--outlet", "telegraph", "--scope", "clearance"
    )
    assert made.code == 0, made.stderr
    key = made.stdout.strip()
    assert KEY.fullmatch(key)
    assert "shown" in made.stderr
    assert key.split(".")[1] not in made.stderr
    stored = PartnerKey.objects.get()
    assert (stored.scope, stored.outlet.slug) == ("clearance", "telegraph")
    listing = run_command("partner_key", "list")
    assert listing.json()[0]["prefix"] == stored.prefix
    assert key.split(".")[1] not in listing.stdout
    unknown = run_command("partner_key", "create", "--outlet", "nope")
    assert unknown.code == 1
    assert "partner outlets: telegraph" in unknown.stderr  # what to type instead
    assert (
        run_command("partner_key", "create", "--outlet", "telegraph", "--expires-in-days", "0").code
        == 2
    )
    assert run_command("partner_key", "revoke", stored.prefix).code == 0
    assert (
        bearer(key)
        .post("/api/v1/clearance", {"urls": ["https://a.example/"]}, format="json")
        .status_code
        == 401
    )
    assert run_command("partner_key", "revoke", "rk_nothing").code == 1
    actors = AuditEvent.objects.filter(stream="outlet:telegraph").values_list("actor", flat=True)
    assert all(actor.startswith("os:") for actor in actors)


ADD = reverse("admin:rights_partnerkey_add")
LIST = reverse("admin:rights_partnerkey_changelist")


def console(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_shows_a_new_key_once_to_the_admin_role_only(db: None) -> None:
    outlet = OutletFactory.create(name="El País", slug="el-pais", is_partner=False)
    admin = console(staff_in("admin", "ada"))
    page = admin.post(ADD, {"outlet": outlet.pk, "scope": "takedowns", "name": "CMS"})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    shown = KEY.findall(page.content.decode())
    assert len(set(shown)) == 1
    key = shown[0]
    stored = PartnerKey.objects.get()
    assert stored.created_by is not None
    assert stored.created_by.username == "ada"
    assert Outlet.objects.get(pk=outlet.pk).is_partner  # a key makes the outlet a partner
    assert bearer(key).get(TAKEDOWNS).status_code == 200
    # Never again: not in the list, not on the key's page, not in a message or a cookie.
    secret = key.split(".")[1]
    for path in (LIST, reverse("admin:rights_partnerkey_change", args=[stored.pk])):
        answer = admin.get(path)
        assert answer.status_code == 200
        assert stored.prefix in answer.content.decode()
        assert secret not in answer.content.decode()
    assert all(secret not in morsel.value for morsel in admin.cookies.values())
    # An expiry in the past is refused by the form; nothing is made.
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    refused = admin.post(ADD, {"outlet": outlet.pk, "scope": "takedowns", "expires_at": past})
    assert refused.status_code == 200
    assert "must be in the future" in refused.content.decode()
    assert PartnerKey.objects.count() == 1
    later = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    dated = admin.post(ADD, {"outlet": outlet.pk, "scope": "clearance", "expires_at": later})
    assert dated.status_code == 200
    assert PartnerKey.objects.get(scope="clearance").expires_at is not None
    PartnerKey.objects.filter(scope="clearance").update(revoked_at=timezone.now())
    # Revoked by the admin action.
    admin.post(LIST, {"action": "revoke", "_selected_action": [stored.pk]})
    assert PartnerKey.objects.get(pk=stored.pk).revoked_at is not None
    assert bearer(key).get(TAKEDOWNS).status_code == 401


@pytest.mark.parametrize("role", ["reviewer", "lead"])
def test_other_roles_can_neither_see_nor_create_nor_revoke_keys(db: None, role: str) -> None:
    outlet = telegraph()
    new = partner_key_create(outlet=outlet, actor="test")
    client = console(staff_in(role, f"{role}-1"))
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"outlet": outlet.pk, "scope": "takedowns"}).status_code == 403
    assert client.get(LIST).status_code == 403
    client.post(LIST, {"action": "revoke", "_selected_action": [new.key.pk]})
    assert PartnerKey.objects.count() == 1
    assert PartnerKey.objects.get().revoked_at is None
