"""Real mail servers on loopback for the mailbox's tests: Debian's Dovecot (IMAP) with a
throwaway configuration, user and maildir, and an SMTP server (aiosmtpd) that keeps what it
receives."""

from __future__ import annotations

import grp
import imaplib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.stack import free_port

DOVECOT = "/usr/sbin/dovecot"
USER = "takedown"
PASSWORD = "imap-test-password"  # a throwaway server's throwaway user

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
# Plain login over loopback only: this server listens nowhere else.
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


class Dovecot:
    """A Dovecot IMAP server of the test's own, in the foreground (its process is ours)."""

    def __init__(self) -> None:
        assert os.path.exists(DOVECOT), "the IMAP tests need Debian's dovecot-imapd"
        # Outside pytest's private temporary directory, which the mail user cannot enter.
        self.dir = Path(tempfile.mkdtemp(prefix="rights-dovecot-"))
        owner = pwd.getpwnam("dovecot")
        uid, gid = owner.pw_uid, grp.getgrgid(owner.pw_gid).gr_gid
        for sub in ("run", "state", "mail", "home"):
            (self.dir / sub).mkdir()
        for sub in ("mail", "home"):
            os.chown(self.dir / sub, uid, gid)
        os.chmod(self.dir, 0o755)
        (self.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.port = free_port()
        config = self.dir / "dovecot.conf"
        config.write_text(CONFIG.format(dir=self.dir, uid=uid, gid=gid, port=self.port))
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                self.client().logout()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.close()
            raise AssertionError(f"dovecot would not start:\n{self.log()}")

    @property
    def url(self) -> str:
        return f"imap://{USER}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            status, _ = client.append(folder, None, None, raw)
            assert status == "OK"
        finally:
            client.logout()

    def count(self, folder: str) -> int:
        client = self.client()
        try:
            status, data = client.select(folder, readonly=True)
            if status != "OK":
                return 0
            return int(data[0] or 0)
        finally:
            client.logout()

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SmtpSink:
    """An SMTP server on loopback that keeps every message it is handed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.original_content, policy=policy.default)
                assert isinstance(message, EmailMessage)
                with sink.lock:
                    sink.messages.append(message)
                return "250 OK"

        # aiosmtpd narrates every command at INFO; its warnings are enough here.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.controller.stop()
