"""The deadline engine's settings: a bad value stops start-up with a message naming it.

The settings module is run afresh for each refused value (in this process, in a namespace of its
own, from the environment given), and `manage.py check` is started in a fresh process, as a
deployment would start the service, for the accepted ones and for what the operator reads.
"""

from __future__ import annotations

import runpy
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from rights.models import ContentItem
from tests.integration.test_settings import manage

SETTINGS = Path(__file__).resolve().parents[2] / "config" / "settings.py"


def _production(tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_SIGNING_KEY": secrets.token_urlsafe(50),
        "AUDIT_WITNESS": str(tmp_path / "witness.jsonl"),
        "ALLOWED_HOSTS": "rights.example",
    }


def check(tmp_path: Path, env: dict[str, str], *, debug: bool = False) -> Any:
    base = _production(tmp_path)
    if debug:
        base["DEBUG"] = "1"
    return manage("check", **{**base, **env})


REFUSED = [
    ({"TAKEDOWN_DEADLINE": "3000000000"}, "TAKEDOWN_DEADLINE must be at most 316224000"),
    ({"REMOVAL_WEBHOOK_TIMEOUT": "abc"}, "REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds"),
    ({"REMOVAL_WEBHOOK_TIMEOUT": "0"}, "REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds"),
    ({"REMOVAL_WEBHOOK_TIMEOUT": "inf"}, "REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds"),
    ({"REMOVAL_WEBHOOK_TIMEOUT": "nan"}, "REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds"),
    ({"REMOVAL_WEBHOOK_TIMEOUT": "-5"}, "REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds"),
    ({"REMOVAL_WEBHOOK_TIMEOUT": "3600"}, "REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds"),
    (
        {"REMOVAL_BACKENDS": "catalogue,webhok"},
        "REMOVAL_BACKENDS names unknown backend(s) 'webhok'",
    ),
    ({"REMOVAL_BACKENDS": ""}, "REMOVAL_BACKENDS is empty"),
    ({"REMOVAL_BACKENDS": " , "}, "REMOVAL_BACKENDS is empty"),
    ({"REMOVAL_BACKENDS": "webhook"}, "REMOVAL_BACKENDS must include `catalogue`"),
    ({"REMOVAL_WEBHOOK_URL": "ftp://cms.example/takedown"}, "must be an http or https URL"),
    ({"REMOVAL_WEBHOOK_URL": "file:///etc/passwd"}, "must be an http or https URL"),
    ({"REMOVAL_WEBHOOK_URL": "cms.example/takedown"}, "must be an http or https URL"),
    ({"REMOVAL_WEBHOOK_URL": "https:///takedown"}, "REMOVAL_WEBHOOK_URL has no host"),
    ({"REMOVAL_WEBHOOK_URL": "http://cms.example/takedown"}, "must use https when DEBUG is off"),
    # A name under .localhost is not resolved to loopback everywhere: it may leave the machine.
    ({"REMOVAL_WEBHOOK_URL": "http://cms.localhost/takedown"}, "must use https when DEBUG is off"),
    ({"REMOVAL_WEBHOOK_URL": "https://cms.example:99999/"}, "REMOVAL_WEBHOOK_URL is not a valid"),
]


@pytest.mark.parametrize(("env", "message"), REFUSED, ids=[str(e) for e, _ in REFUSED])
def test_bad_engine_settings_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in ("DEBUG", "DJANGO_SETTINGS_MODULE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**_production(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as refused:
        runpy.run_path(str(SETTINGS))
    assert message in str(refused.value)


def test_the_operator_reads_one_line_naming_the_setting(tmp_path: Path) -> None:
    result = check(tmp_path, {"REMOVAL_WEBHOOK_TIMEOUT": "abc"})
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: REMOVAL_WEBHOOK_TIMEOUT must be")
    assert "Traceback" not in result.stderr


ACCEPTED = [
    {"TAKEDOWN_DEADLINE": "316224000"},
    {"REMOVAL_WEBHOOK_TIMEOUT": "0.5"},
    {"REMOVAL_WEBHOOK_TIMEOUT": "20"},
    {
        "REMOVAL_BACKENDS": "webhook, catalogue",
        "REMOVAL_WEBHOOK_SECRET": "s" * 32,
        "REMOVAL_WEBHOOK_URL": "https://cms.example/takedown",
    },
    {"REMOVAL_WEBHOOK_URL": "http://127.0.0.1:8080/takedown"},
    {"REMOVAL_WEBHOOK_URL": "http://[::1]:8080/takedown"},
    {"REMOVAL_WEBHOOK_URL": "http://localhost/takedown"},
]


@pytest.mark.parametrize("env", ACCEPTED, ids=[str(e) for e in ACCEPTED])
def test_good_engine_settings_are_accepted(tmp_path: Path, env: dict[str, str]) -> None:
    result = check(tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_plain_http_to_a_remote_cms_is_allowed_only_with_debug(tmp_path: Path) -> None:
    result = check(tmp_path, {"REMOVAL_WEBHOOK_URL": "http://cms.internal/takedown"}, debug=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the column's range is PostgreSQL's")
def test_the_longest_deadline_allowed_fits_intake(
    settings: Any, submit: Any, item: ContentItem
) -> None:
    settings.TAKEDOWN_DEADLINE = settings.TAKEDOWN_DEADLINE_MAX
    case = submit(urls=[item.source_url]).case
    case.refresh_from_db()
    assert case.deadline_seconds == settings.TAKEDOWN_DEADLINE_MAX
    assert case.clock_started_at is not None
    assert case.deadline_at == case.clock_started_at + timedelta(
        seconds=settings.TAKEDOWN_DEADLINE_MAX
    )
