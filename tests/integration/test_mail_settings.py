"""The mailbox's settings: a bad value stops start-up with one line naming it, a password is
never echoed, and beat reads the mailbox only when MAILBOX_URL is set."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.integration.test_engine_settings import SETTINGS, _production, check

REFUSED = [
    ({"MAILBOX_URL": "pop3://u:p@mail.example/INBOX"}, "MAILBOX_URL must start with imaps://"),
    ({"MAILBOX_URL": "imap://u:p@mail.example/INBOX"}, "must use imaps:// for a mailbox on"),
    ({"MAILBOX_URL": "imaps://mail.example/INBOX"}, "must carry a user and a password"),
    ({"MAILBOX_URL": "imaps://u:p@/INBOX"}, "MAILBOX_URL must name a host"),
    ({"MAILBOX_URL": "imaps://u:p@mail.example:99999/"}, "port that is not a number"),
    ({"MAIL_AUTHSERV_ID": "mx.example; dmarc=pass"}, "MAIL_AUTHSERV_ID must be a host name"),
    ({"MAIL_MAX_BYTES": "100"}, "MAIL_MAX_BYTES must be at least 16384"),
    ({"MAIL_MAX_BYTES": "999999999"}, "MAIL_MAX_BYTES must be at most 104857600"),
    ({"MAIL_RATE_PER_SENDER": "lots"}, "MAIL_RATE_PER_SENDER must be a rate such as 10/h"),
    ({"MAIL_POLL_INTERVAL": "0"}, "MAIL_POLL_INTERVAL must be at least 1"),
    ({"MAIL_ANSWERS_PER_HOUR": "0"}, "MAIL_ANSWERS_PER_HOUR must be at least 1"),
    ({"MAIL_ANSWERS_PER_HOUR": "many"}, "MAIL_ANSWERS_PER_HOUR must be a whole number"),
    ({"MAIL_ANSWERS_PER_HOUR": "100001"}, "MAIL_ANSWERS_PER_HOUR must be at most 100000"),
    ({"MAIL_PROCESSED_FOLDER": '"; DELETE'}, "MAIL_PROCESSED_FOLDER must be a folder name"),
]


def _settings_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> dict[str, Any]:
    for name in ("DEBUG", "DJANGO_SETTINGS_MODULE", "MAILBOX_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**_production(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize(("env", "message"), REFUSED, ids=[str(e) for e, _ in REFUSED])
def test_bad_mailbox_settings_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        _settings_with(tmp_path, monkeypatch, env)
    assert message in str(refused.value)
    assert ":p@" not in str(refused.value)


def test_beat_reads_the_mailbox_only_when_it_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset = _settings_with(tmp_path, monkeypatch, {})
    assert "mail-fetch" not in unset["CELERY_BEAT_SCHEDULE"]
    assert "mail-pending" in unset["CELERY_BEAT_SCHEDULE"]
    url = "imaps://takedown:s3cret@imap.news.example/INBOX"
    found = _settings_with(tmp_path, monkeypatch, {"MAILBOX_URL": url, "MAIL_POLL_INTERVAL": "30"})
    entry = found["CELERY_BEAT_SCHEDULE"]["mail-fetch"]
    assert (entry["task"], entry["schedule"], entry["options"]) == (
        "rights.mail_fetch",
        30,
        {"expires": 30},
    )
    # Plain IMAP is accepted on this machine only.
    local = "imap://u:p@127.0.0.1:1143/INBOX"
    assert _settings_with(tmp_path, monkeypatch, {"MAILBOX_URL": local})["MAILBOX_URL"] == local


def test_the_operator_reads_one_line_without_the_password(tmp_path: Path) -> None:
    result = check(tmp_path, {"MAILBOX_URL": "imap://takedown:hunter2@mail.example/INBOX"})
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: MAILBOX_URL must use imaps://")
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
