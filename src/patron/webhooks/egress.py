"""Where webhooks may go: public addresses only, unless an operator allows a network.

A webhook URL is chosen by whoever administers endpoints, and Patron then makes requests to it
from inside the retailer's network. So the destination is checked when the endpoint is created
and again at every delivery: the host is resolved, *every* address it resolves to must be public
(or inside ``PATRON_WEBHOOK_ALLOWED_NETWORKS``), and the request is sent to the address that was
checked — the URL's name is kept only for the ``Host`` header and TLS (SNI and certificate check),
so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolve(host, port)`` → the addresses a connection could go to (tests inject their own)
Resolver = Callable[[str, int], list[str]]


class RefusedDestination(Exception):
    """The destination may not be contacted; ``kind`` is the error class kept in the log."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any spelling a resolver accepts: dotted, IPv6
    (bracketed or not), and the legacy IPv4 forms ``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
    ``127.1``."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefABCDEFxX." for c in bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [ip.ipv4_mapped, ip.sixtofour]
    if ip.teredo:
        found.extend(ip.teredo)
    # IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) carry an IPv4 address too
    if int(ip) >> 32 == 0 or ip in ipaddress.IPv6Network("64:ff9b::/96"):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def is_public(ip: IPAddress) -> bool:
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return all(is_public(v4) for v4 in _embedded_v4(ip))
    return True


def permitted(ip: IPAddress, allowed: Sequence[Network]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    if any(c in net for c in candidates for net in allowed):
        return True
    return is_public(ip)


@dataclass(frozen=True, slots=True)
class Target:
    """A checked destination: connect to ``address``, present ``host`` in Host and TLS."""

    url: httpx.URL
    address: IPAddress

    def pinned(self) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """The URL to request (host replaced by the checked address), the Host header, and
        the request extensions that keep TLS talking to (and verifying) the original name."""
        host = self.url.host
        shown = f"[{host}]" if ":" in host else host
        if self.url.port is not None:
            shown = f"{shown}:{self.url.port}"
        extensions: dict[str, Any] = {}
        if self.url.scheme == "https":
            extensions["sni_hostname"] = host
        return self.url.copy_with(host=str(self.address)), {"Host": shown}, extensions


def parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise RefusedDestination("invalid_url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise RefusedDestination("invalid_url")
    if parsed.userinfo:
        raise RefusedDestination("invalid_url")
    return parsed


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def resolve(url: str, allowed: Sequence[Network], resolver: Resolver | None = None) -> Target:
    """Check the destination now; raise ``RefusedDestination`` (``invalid_url``,
    ``unresolvable`` or ``refused_destination``) or return the address to connect to."""
    parsed = parse(url)
    literal = literal_address(parsed.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            found = (resolver or system_resolve)(parsed.host, _port(parsed))
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        except (OSError, UnicodeError, ValueError) as exc:
            raise RefusedDestination("unresolvable") from exc
        if not addresses:
            raise RefusedDestination("unresolvable")
    # Every answer must pass: a name that resolves to one public and one private address
    # could be connected to either.
    if not all(permitted(a, allowed) for a in addresses):
        raise RefusedDestination("refused_destination")
    return Target(parsed, addresses[0])


def check_new_endpoint(
    url: str, allowed: Sequence[Network], resolver: Resolver | None = None
) -> None:
    """At creation: refuse what is refused now. A name that does not resolve yet is accepted
    (every delivery checks again)."""
    try:
        resolve(url, allowed, resolver)
    except RefusedDestination as exc:
        if exc.kind != "unresolvable":
            raise
