"""Settings come from the environment, with safe production defaults."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Leave out what the test settings put in this process's environment.
    dropped = {"DEBUG", "SECRET_KEY", "AUDIT_SIGNING_KEY", "SECURE_SSL_REDIRECT", "ALLOWED_HOSTS"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.smoke
def test_check_deploy_is_clean_with_debug_off_and_a_real_secret(tmp_path: Path) -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="rights.example",
        DATABASE_URL="postgres://rights@db.internal:5432/rights",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.smoke
def test_check_deploy_warns_about_sqlite(tmp_path: Path) -> None:
    result = manage(
        "check",
        "--deploy",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="rights.example",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert "rights.W001" in result.stderr + result.stdout


def test_check_deploy_warns_about_loopback_webhooks_in_production() -> None:
    result = manage(
        "check",
        "--deploy",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="rights.example",
        DATABASE_URL="postgres://rights@db.internal:5432/rights",
        PARTNER_WEBHOOK_ALLOW_LOOPBACK="1",
    )
    assert "rights.W002" in result.stderr + result.stdout


@pytest.mark.smoke
def test_missing_secret_key_is_refused_when_debug_is_off(tmp_path: Path) -> None:
    result = manage("check", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.smoke
def test_bad_deadline_is_refused(tmp_path: Path) -> None:
    result = manage(
        "check",
        DEBUG="1",
        TAKEDOWN_DEADLINE="a day",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode != 0
    assert "TAKEDOWN_DEADLINE must be a whole number" in result.stderr


def test_sla_status_command_exits_non_zero_when_degraded(tmp_path: Path) -> None:
    # No sweeper has ever run against this fresh database: degraded, exit 1, figures printed.
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert manage("migrate", "-v0", DEBUG="1", DATABASE_URL=db).returncode == 0
    result = manage("sla_status", DEBUG="1", DATABASE_URL=db)
    assert result.returncode == 1
    assert '"status": "degraded"' in result.stdout
    assert '"open_cases": 0' in result.stdout
