"""The unit a per-client limit counts: an IPv4 address, or an IPv6 address's /64 network.

One IPv6 subscriber is routinely given a whole /64 (2**64 addresses): counted per address, a
single client could spread its attempts over as many addresses as it likes.
"""

from __future__ import annotations

import ipaddress


def throttle_scope(address: str) -> str:
    """``address`` as a limit should count it; anything that is not an IP address is kept."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
