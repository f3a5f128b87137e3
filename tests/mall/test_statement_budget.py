"""Statement budgets of the mall's writes through the API (authentication, idempotency, locks,
reads and writes all count): a redemption, its verification and a cancellation."""

from __future__ import annotations

import pytest

from tests.mall.helpers import grant, setup_gift, store
from tests.statements import count_statements

# Measured when written (SQLite counts its BEGIN IMMEDIATE). A redemption: member lookup
# (1: its consents and tags load only when read), both settings sections (1), gift, store,
# the ledger's lock and settle (5), the stock reservation (1), the ledger's spend (9 with
# its event and audit), the order row, its movement, its event and audit. A cancel pays the
# ledger's cancel_spend (17). The risk check (patron.risk) adds one statement to a redemption
# that is not held.
BUDGET = {
    "redeem": {"sqlite": 26, "postgresql": 26},
    "verify": {"sqlite": 12, "postgresql": 12},
    "cancel": {"sqlite": 30, "postgresql": 30},
}


@pytest.fixture
def ready(client, database, clock, auth_headers, make_member):
    op = auth_headers("operator")
    clerk = auth_headers("clerk")
    store(client, op)
    setup_gift(client, op, stock={"east": 10})
    warm, no = make_member(), make_member()
    for m in (warm, no):
        grant(database, clock, m, 2000, key=m)
    # a first redemption warms the process's caches (API key, settings) as a running server's
    r = client.post(
        "/api/v1/mall/redemptions", json={"member_no": warm, "gift_code": "MUG"}, headers=clerk
    )
    assert r.status_code == 201, r.text
    return clerk, no


def _measure(client, database, case, path, body, headers):
    with count_statements(database.engine) as log:
        r = client.post(path, json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    budget = BUDGET[case][database.dialect]
    assert log.count <= budget, f"{case}: {log.count} statements > {budget}\n{log.report()}"
    return r


def test_redeem_then_verify(client, database, ready):
    clerk, no = ready
    r = _measure(
        client,
        database,
        "redeem",
        "/api/v1/mall/redemptions",
        {"member_no": no, "gift_code": "MUG", "store_code": "SH001"},
        clerk,
    )
    _measure(
        client,
        database,
        "verify",
        "/api/v1/mall/verifications",
        {"code": r.json()["code"], "store_code": "SH001"},
        clerk,
    )


def test_cancel(client, database, ready):
    clerk, no = ready
    r = client.post(
        "/api/v1/mall/redemptions", json={"member_no": no, "gift_code": "MUG"}, headers=clerk
    )
    code = r.json()["code"]
    _measure(client, database, "cancel", f"/api/v1/mall/redemptions/{code}/cancel", {}, clerk)


#: A losing attempt at a sold-out flash sale through an API key: the key's lookup and the
#: sale's read, nothing else (no settings, member, gift or store; no write — the key's use is
#: recorded hourly, from the lookup's own read). SQLite counts its BEGIN IMMEDIATE.
FLASH_LOSER_BUDGET = {"sqlite": 3, "postgresql": 2}


def test_a_losing_flash_attempt_costs_two_reads(
    client, database, clock, auth_headers, api_key_headers, make_member
):
    from datetime import timedelta

    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, stock={"east": 5})
    sale = client.post(
        "/api/v1/mall/flash-sales",
        json={
            "gift_code": "MUG",
            "points": 50,
            "quantity": 1,
            "per_member_limit": 1,
            "starts_at": clock.now().isoformat(),
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
        },
        headers=op,
    ).json()
    winner, loser = make_member(), make_member()
    for no in (winner, loser):
        grant(database, clock, no, 100)
    key = api_key_headers("mall:redeem")
    body = {"gift_code": "MUG", "flash_sale_id": sale["id"], "store_code": "SH001"}
    won = client.post("/api/v1/mall/redemptions", json={"member_no": winner, **body}, headers=key)
    assert won.status_code == 201, won.text
    with count_statements(database.engine) as log:
        lost = client.post(
            "/api/v1/mall/redemptions", json={"member_no": loser, **body}, headers=key
        )
    assert lost.status_code == 409 and lost.json()["error"]["code"] == "flash_sold_out"
    budget = FLASH_LOSER_BUDGET[database.dialect]
    assert log.count <= budget, f"{log.count} statements > {budget}\n{log.report()}"
    # an unknown sale, or a sale of another gift, is told apart from a sold-out one
    other = client.post(
        "/api/v1/mall/redemptions",
        json={"member_no": loser, **body, "gift_code": "NOPE"},
        headers=key,
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "flash_sale_not_found"
