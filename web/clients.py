"""Who is asking: the client's IP address, believing X-Forwarded-For only from the configured proxies.

A header any caller can set must not choose the key of a rate limit, nor be stored as the IP address
of someone's consent. Behind a proxy listed in FORWARDED_ALLOW_IPS, the client is the nearest address
in X-Forwarded-For that is not itself one of those proxies (the right-most untrusted hop: the left
part of the header is whatever the client sent).
"""

from __future__ import annotations

import ipaddress

from fastapi import Request

from course.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 192.0.2.1:443
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_ip(request: Request, settings: Settings) -> str | None:
    """The client's IP address as text, or None when it is not known to be one."""
    peer = _parse(request.client.host) if request.client else None
    proxies = settings.trusted_proxies

    def trusted(address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in proxies)

    if not trusted(peer):
        return None if peer is None else str(peer)
    hops = [hop for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return None  # the proxy passed on something that is not an address: do not guess
        if not trusted(address):
            return str(address)
    return str(peer)


# An IPv6 client usually holds a whole /64 (SLAAC, privacy addresses): a limit per address would give
# it 2**64 of them. IPv4 addresses are scarce: one each.
IPV6_PREFIX = 64


def limit_key(request: Request, settings: Settings) -> str:
    """What a per-client rate limit counts by: the client's IPv4 address, or its IPv6 /64 network."""
    found = client_ip(request, settings)
    if found is None:
        return "unknown"
    address = ipaddress.ip_address(found)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is an IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)
