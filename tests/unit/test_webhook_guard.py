"""The partner webhooks' guard against server-side request forgery: which endpoints are refused,
however their address is spelled. Resolution is the system's own (getaddrinfo), as at delivery."""

from __future__ import annotations

from typing import Any

import pytest

from rights.services.webhooks import EndpointRefused, check_endpoint_url
from tests.integration.test_settings import manage

REFUSED = {
    "https://127.0.0.1/hooks": "loopback",
    "https://127.8.9.10/hooks": "loopback",
    "https://[::1]/hooks": "loopback",
    "https://localhost/hooks": "loopback",
    "https://[::ffff:127.0.0.1]/hooks": "loopback",
    "https://[::ffff:7f00:1]/hooks": "loopback",
    # Decimal, octal and hexadecimal spellings of 127.0.0.1 resolve to it, and are judged so.
    "https://2130706433/hooks": "loopback",
    "https://0177.0.0.1/hooks": "loopback",
    "https://0x7f000001/hooks": "loopback",
    "https://10.0.0.7/hooks": "private",
    "https://172.16.5.4/hooks": "private",
    "https://192.168.1.1/hooks": "private",
    "https://012.0.0.1/hooks": "private",  # octal 012 is 10
    "https://[fd00::1]/hooks": "private",
    "https://[::ffff:10.0.0.1]/hooks": "private",
    "https://169.254.169.254/latest/meta-data": "link-local",
    "https://[fe80::1]/hooks": "link-local",
    "https://0.0.0.0/hooks": "unspecified",
    "https://[::]/hooks": "unspecified",
    "https://224.0.0.1/hooks": "multicast",
    "https://100.64.0.1/hooks": "reserved",  # carrier-grade NAT: not the public internet
    "https://240.0.0.1/hooks": "reserved",
    # 6to4 and Teredo addresses carry an IPv4 address, and reach it: judged as it.
    "https://[2002:7f00:1::]/hooks": "loopback",
    "https://[2002:a9fe:a9fe::]/hooks": "link-local",
    "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hooks": "private",  # Teredo to 10.0.0.1
    "https://[fec0::1]/hooks": "site-local",
}


@pytest.mark.parametrize(("url", "why"), list(REFUSED.items()))
def test_private_addresses_are_refused_however_spelled(url: str, why: str) -> None:
    with pytest.raises(EndpointRefused) as refused:
        check_endpoint_url(url)
    assert refused.value.field == "url"
    assert why in refused.value.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://93.184.215.14/hooks", "https"),
        ("ftp://93.184.215.14/hooks", "https"),
        ("https://user:pw@93.184.215.14/hooks", "user name or password"),
        ("https:///hooks", "no host"),
        ("https://93.184.215.14:99999/hooks", "not a valid URL"),
        ("https://93.184.215.14/hooks#frag", "fragment"),
        ("https://1.1.1.1:0/hooks", "Port 0"),
        ("https://93.184.215.14/ho oks", "spaces"),
        ("", "Give the endpoint"),
        ("https://93.184.215.14/" + "a" * 2050, "longer than"),
    ],
)
def test_malformed_or_plain_http_endpoints_are_refused(url: str, words: str) -> None:
    with pytest.raises(EndpointRefused) as refused:
        check_endpoint_url(url)
    assert words in refused.value.message


def test_a_public_https_address_is_accepted_and_checked_as_resolved() -> None:
    destination = check_endpoint_url("https://93.184.215.14:8443/hooks?tenant=7")
    assert destination.host == "93.184.215.14"
    assert destination.port == 8443
    assert destination.addresses == ("93.184.215.14",)


def test_the_loopback_allowance_allows_this_machine_only(settings: Any) -> None:
    settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK = True
    assert check_endpoint_url("http://127.0.0.1:8080/hooks").addresses == ("127.0.0.1",)
    assert set(check_endpoint_url("http://localhost:8080/hooks").addresses) <= {
        "127.0.0.1",
        "::1",
    }
    for url in ("https://10.0.0.7/", "https://169.254.169.254/", "https://[fd00::1]/"):
        with pytest.raises(EndpointRefused):
            check_endpoint_url(url)
    # Plain http only to this machine, even with the allowance.
    with pytest.raises(EndpointRefused, match="https"):
        check_endpoint_url("http://93.184.215.14/hooks")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("PARTNER_WEBHOOK_TIMEOUT", "soon", "PARTNER_WEBHOOK_TIMEOUT must be a number of seconds"),
        ("PARTNER_WEBHOOK_MAX_ATTEMPTS", "1000", "PARTNER_WEBHOOK_MAX_ATTEMPTS must be at most"),
    ],
)
def test_a_bad_webhook_setting_stops_start_up_naming_it(name: str, value: str, words: str) -> None:
    result = manage("check", DEBUG="1", **{name: value})
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: ")
    assert words in result.stderr
