"""Benchmarks of the mailbox. Prints figures; asserts nothing about speed.

    .venv/bin/python tests/bench/bench_mail.py [parse|store|memory|hostile|all]

`hostile` reads a URL followed by 150,000 closing brackets, and stores and reads a message of
100,000 distinct URLs (of which the first 200 are looked up in the catalogue). `parse` reads the
corpus (tests/mail_corpus) in memory; `store` stores and reads distinct
messages on real PostgreSQL (database `rights_mail`, recreated; Redis db 6, where the answers'
tasks are published and then flushed), half naming an article and half naming none (so
answered); `memory` reads one message at the 10 MiB cap (a base64 attachment and a large HTML
part) and reports the peak of Python's allocations. BENCH_MAIL (default 500) sets the count.
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/rights_mail"
os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/6"
os.environ["MAIL_ANSWERS_PER_HOUR"] = "100000"  # the store figure answers half its messages

import django  # noqa: E402
import psycopg  # noqa: E402

with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
    admin.execute("DROP DATABASE IF EXISTS rights_mail WITH (FORCE)")
    admin.execute("CREATE DATABASE rights_mail")

django.setup()

from django.core.management import call_command  # noqa: E402

from rights.mail.parse import parse_message  # noqa: E402
from rights.mail.receive import message_process, message_store  # noqa: E402
from tests.factories import ContentItemFactory, telegraph  # noqa: E402
from tests.stack import redis_client  # noqa: E402

CORPUS = ROOT / "tests" / "mail_corpus"
COUNT = int(os.environ.get("BENCH_MAIL", "500"))


def bench_parse() -> None:
    messages = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    rounds = max(1, COUNT // len(messages))
    started = time.perf_counter()
    for _ in range(rounds):
        for raw in messages:
            parse_message(raw, authserv_id="mx.news.example")
    took = time.perf_counter() - started
    total = rounds * len(messages)
    print(f"parse: {total} corpus messages in {took:.2f} s: {total / took:,.0f} messages/s")


def bench_store() -> None:
    call_command("migrate", verbosity=0)
    ContentItemFactory.create(outlet=telegraph(), slug="harbour-fire")
    plain = (CORPUS / "plain.eml").read_bytes()
    none = (CORPUS / "no_article.eml").read_bytes()
    times = []
    started = time.perf_counter()
    for n in range(COUNT):
        template = plain if n % 2 else none
        raw = template.replace(b"Message-ID: <", f"Message-ID: <bench{n}.".encode())
        # Distinct senders (a +tag is the same sender), so the per-sender limit stays out of
        # the way.
        raw = raw.replace(b"@example.org>", f"{n}@example.org>".encode(), 1)
        one = time.perf_counter()
        stored = message_store(raw=raw, source="pipe")
        message_process(message_id=stored.message.pk)
        times.append(time.perf_counter() - one)
    took = time.perf_counter() - started
    cuts = statistics.quantiles(times, n=100)
    print(
        f"store and read: {COUNT} messages in {took:.1f} s: {COUNT / took:.1f} messages/s; "
        f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms per message "
        "(half open a case, half are answered)"
    )
    redis_client().flushdb()


def bench_memory() -> None:
    attachment = base64.encodebytes(os.urandom(6 * 1024 * 1024)).replace(b"\n", b"\r\n")
    html = b"<p>" + b"Lorem ipsum <a href='https://example.org/x'>dolor</a> sit. " * 40_000
    raw = (
        b"From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + b"\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + b"\r\n--b--\r\n"
    )
    tracemalloc.start()
    started = time.perf_counter()
    parsed = parse_message(raw, authserv_id="")
    took = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"memory: a {len(raw) / 2**20:.1f} MiB message ({len(parsed.urls)} distinct URLs) read "
        f"in {took:.2f} s, peak {peak / 2**20:.0f} MiB of Python allocations "
        f"({peak / len(raw):.1f} x its size)"
    )


def bench_hostile() -> None:
    brackets = b"From: a@example.org\r\nSubject: x\r\n\r\nhttp://a" + b")" * 150_000 + b"\r\n"
    started = time.perf_counter()
    parse_message(brackets, authserv_id="")
    print(
        f"hostile: a URL and 150,000 closing brackets read in {time.perf_counter() - started:.3f} s"
    )
    call_command("migrate", verbosity=0)
    links = " ".join(f"https://junk{n}.example/{n}" for n in range(100_000)).encode()
    many = (
        b"From: h@example.org\r\nSubject: links\r\nMessage-ID: <many@example.org>\r\n\r\n"
        + links
        + b"\r\n"
    )
    started = time.perf_counter()
    stored = message_store(raw=many, source="pipe")
    state = message_process(message_id=stored.message.pk)
    took = time.perf_counter() - started
    print(
        f"hostile: a {len(many) / 2**20:.1f} MiB message of 100,000 distinct URLs stored and "
        f"read in {took:.2f} s ({state})"
    )
    redis_client().flushdb()


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in {"parse", "all"}:
        bench_parse()
    if which in {"store", "all"}:
        bench_store()
    if which in {"memory", "all"}:
        bench_memory()
    if which in {"hostile", "all"}:
        bench_hostile()
