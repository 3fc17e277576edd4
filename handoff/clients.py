"""Who is asking: the client address that login throttling counts against.

Behind a reverse proxy every request comes from the proxy's address, so counting failures per
``request.remote`` would let twenty anonymous failures lock out every member of staff. The
``X-Forwarded-For`` header is believed only when the request comes from a proxy listed in
``SANAD_TRUSTED_PROXIES``; the client is then the right-most address in the chain that is not
itself a trusted proxy (the left-most entries are whatever the client chose to send).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        return cls(tuple(ipaddress.ip_network(e, strict=False) for e in entries))

    def trusts(self, address: str | None) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def client_of(self, request: web.Request) -> str:
        """The address to hold responsible for this request."""
        peer = request.remote or "unknown"
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", [])
                for hop in header.split(",") if hop.strip()]
        for hop in reversed(hops):
            if _ip(hop) is None:
                return peer  # a malformed chain: blame the proxy that passed it on
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None
