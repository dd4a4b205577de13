"""Reading a message, without a database: URLs however they are written, HTML as text,
automatic messages, and the storage key."""

from __future__ import annotations

import pytest

from rights.mail.mailbox import parse_mailbox_url, rate_window
from rights.mail.parse import (
    header_message_id,
    html_text,
    parse_message,
    storage_key,
    urls_in_text,
)

SRC = "https://www.telegraph.co.uk/news/harbour-fire/"


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        (f"see {SRC}.", [SRC]),
        (f"({SRC})", [SRC]),
        (f"<{SRC}>", [SRC]),
        (f"“{SRC}”", [SRC]),
        (f"«{SRC}»", [SRC]),
        (f"{SRC}を削除してください。", [SRC]),
        ("www.telegraph.co.uk/news/x, thanks", ["https://www.telegraph.co.uk/news/x"]),
        (
            "https://en.wikipedia.org/wiki/Fire_(disambiguation)",
            ["https://en.wikipedia.org/wiki/Fire_(disambiguation)"],
        ),
        (f"two: {SRC} and http://news.example/a/b/!", [SRC, "http://news.example/a/b/"]),
        ("no links here, just www. and http:// alone, or www.example", []),
        ("http://localhost:8000/a/x/ on this machine", ["http://localhost:8000/a/x/"]),
        ("https://a.example/" + "x" * 3000, []),
    ],
)
def test_urls_in_text(text: str, urls: list[str]) -> None:
    assert urls_in_text(text) == urls


def test_html_is_read_as_text_with_its_links() -> None:
    text, links = html_text(
        "<html><head><title>t</title><style>a{}</style></head><body>"
        "<script>document.write('x')</script><p>Remove <a href='https://a.example/1'>this</a>"
        "<br>please</p><img src=x onerror=alert(1)><area href='https://b.example/2'></body>"
    )
    assert text == "Remove\nthis\nplease"
    assert links == ["https://a.example/1", "https://b.example/2"]


def test_a_message_with_nothing_in_it_is_still_read() -> None:
    parsed = parse_message(b"", authserv_id="mx.news.example")
    assert (parsed.sender, parsed.text, parsed.urls, parsed.automatic) == ("", "", (), "")


def test_garbage_bytes_do_not_crash_the_reader() -> None:
    parsed = parse_message(bytes(range(256)) * 40, authserv_id="mx.news.example")
    assert parsed.sender == ""


def test_the_storage_key() -> None:
    raw = b"From: a@example.org\r\nSubject: s\r\n\r\nremove https://a.example/x\r\n"
    key = storage_key(raw, "<a@b>")
    assert key.startswith("mid:<a@b>:")
    assert storage_key(b"x", "").startswith("sha256:")
    long_key = storage_key(b"x", "<" + "a" * 300 + "@b>")
    assert long_key.startswith("mid-sha256:")
    assert max(len(key), len(long_key)) <= 255  # intake's external_id
    # The same message by another path (a header added on top, LF line ends): the same key.
    assert storage_key(b"Delivered-To: t@n.example\n" + raw.replace(b"\r\n", b"\n"), "<a@b>") == key
    # Another message under the same Message-ID: another key.
    assert storage_key(raw.replace(b"/x", b"/y"), "<a@b>") != key
    assert storage_key(raw.replace(b"a@example.org", b"b@example.org"), "<a@b>") != key


def test_a_nul_makes_no_message_id_and_no_url() -> None:
    raw = (
        b"From: a@example.org\r\nMessage-ID: <a\x00b@example.org>\r\nSubject: x\x00y\r\n"
        b"Content-Type: text/html\r\n\r\n<a href='https://a.example/x\x00y'>l</a> "
        b"http://b.example/\x00z\r\n"
    )
    assert header_message_id(raw) == ""
    parsed = parse_message(raw, authserv_id="")
    assert all("\x00" not in url for url in parsed.urls)
    assert "https://a.example/x\x00y" not in parsed.urls


def test_trailing_brackets_are_trimmed_in_linear_time() -> None:
    # 150,000 closing brackets: quadratic trimming took many seconds; this is one pass.
    assert urls_in_text("http://a.example/x" + ")" * 150_000) == ["http://a.example/x"]
    assert urls_in_text("(see http://a.example/f_(x)))") == ["http://a.example/f_(x)"]


def test_a_raw_utf8_sender_domain_is_read_in_its_ascii_form() -> None:
    raw = "From: Anna Müller <anna@müller.de>\r\nSubject: x\r\n\r\nhi\r\n".encode()
    parsed = parse_message(raw, authserv_id="")
    assert (parsed.sender, parsed.sender_name) == ("anna@xn--mller-kva.de", "Anna Müller")


def test_the_mailbox_address_and_rates() -> None:
    address = parse_mailbox_url("imaps://take%40down:p%3Ass@imap.example/Take%20downs")
    assert (address.user, address.password, address.folder, address.port) == (
        "take@down",
        "p:ss",
        "Take downs",
        993,
    )
    assert address.tls
    assert rate_window("10/h") == (10, 3600)
    assert rate_window("5/10m") == (5, 600)
