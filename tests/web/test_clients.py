"""Who the client is: X-Forwarded-For is believed only from the proxies the operator names."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from web.clients import client_ip

from ..conftest import make_settings


def request_from(peer: str, forwarded_for: list[str]) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return Request({"type": "http", "method": "POST", "path": "/subscribe", "headers": headers,
                    "client": (peer, 50000)})  # fmt: skip


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        ("", "203.0.113.5", ["198.51.100.7"], "203.0.113.5"),  # nobody trusted: the header is ignored
        ("10.0.0.0/8", "10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        # The client wrote the left part itself; the proxy appended the address it saw.
        ("10.0.0.0/8", "10.0.0.2", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
        ("10.0.0.0/8", "10.0.0.2", ["1.2.3.4", "198.51.100.7, 10.0.0.9"], "198.51.100.7"),
        ("10.0.0.0/8", "10.0.0.2", ["not an ip"], None),
        ("10.0.0.0/8", "10.0.0.2", ["x" * 100], None),
        ("10.0.0.0/8", "10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.0/8", "10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.0/8", "192.0.2.1", ["198.51.100.7"], "192.0.2.1"),  # not from a trusted proxy
        ("", "testclient", [], None),
    ],
)
def test_the_client_is_the_nearest_untrusted_hop(
    trusted: str, peer: str, forwarded_for: list[str], client: str | None
) -> None:
    settings = make_settings(forwarded_allow_ips=trusted)
    assert client_ip(request_from(peer, forwarded_for), settings) == client


def test_a_proxy_list_that_is_not_addresses_is_a_configuration_error() -> None:
    with pytest.raises(SystemExit, match="FORWARDED_ALLOW_IPS"):
        make_settings(forwarded_allow_ips="10.0.0.0/8,proxy.internal")
