"""Which address a request comes from, for per-client limits: the socket's peer, or, when
that peer is a trusted proxy, the last untrusted hop of `X-Forwarded-For` (only hops our own
proxies appended can be believed; anyone can write the header).
"""

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

from .config import config_key, site

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A peer with no IP address: a Unix socket (`request.remote` is "" or None there).
UNKNOWN = "unknown"


@functools.lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def _address(text: str | None) -> Address | None:
    """An IP address, IPv4-mapped IPv6 as plain IPv4; None for anything else (ports included)."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[str]) -> str:
    """The client behind `peer`, given the request's X-Forwarded-For header values in order.

    Walking from the right, trusted hops are skipped; the first untrusted one is the client.
    A hop that is not an address stops the walk at the hop before it: a trusted proxy
    never writes one, so it came from whoever is on the other side of it.
    """
    address = _address(peer)
    if address is None:
        return UNKNOWN
    networks = _networks(tuple(trusted))
    if not _trusted(address, networks):
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        forwarded = _address(hop)
        if forwarded is None:
            break
        address = forwarded
        if not _trusted(address, networks):
            break
    return str(address)


def of_request(request: web.Request) -> str:
    """The client address of this request (see `client_address`)."""
    return client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        site(request)[config_key]["trusted_proxies"],
    )
