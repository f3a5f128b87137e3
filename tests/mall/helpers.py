"""Shared by the mall tests: gifts, stock and members with points, through the API or services."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.auth.principal import Principal
from patron.ledger import flows
from patron.ledger.service import Ctx
from patron.members.models import Member

SH = ZoneInfo("Asia/Shanghai")
ACTOR = Principal.system("tests")


def grant(database, clock, member_no: str, points: int, key: str | None = None) -> int:
    """Give a member points (a test earning); returns the member id."""
    with database.unit_of_work() as s:
        mid = int(s.scalar(select(Member.id).where(Member.member_no == member_no)))
        ctx = Ctx(ACTOR, clock.now(), SH)
        flows.earn(s, ctx, mid, points=points, source_type="test", source_id=key or member_no)
    return mid


def gift_body(code: str = "MUG", **over) -> dict:
    body = {"code": code, "name": f"Gift {code}", "category": "home", "points": 300}
    body.update(over)
    return body


def setup_gift(client, headers, code: str = "MUG", stock: dict | None = None, **over) -> None:
    r = client.put(f"/api/v1/mall/gifts/{code}", json=gift_body(code, **over), headers=headers)
    assert r.status_code == 200, r.text
    for wh, n in (stock if stock is not None else {"east": 5}).items():
        r = client.post(
            "/api/v1/mall/stock/receipts",
            json={"gift_code": code, "warehouse": wh, "quantity": n},
            headers=headers,
        )
        assert r.status_code == 201, r.text


def store(client, headers, code: str = "SH001", region: str = "East China") -> None:
    r = client.put(
        f"/api/v1/stores/{code}",
        json={"code": code, "name": code, "region": region},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
