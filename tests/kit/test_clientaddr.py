"""What a per-client limit counts: the address for IPv4, the /64 network for IPv6."""

from __future__ import annotations

import pytest

from patron.kit.clientaddr import throttle_scope


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("unknown", "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_throttle_scope(address, scope):
    assert throttle_scope(address) == scope
