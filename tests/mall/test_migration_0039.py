"""Upgrading takes returned flash-sale units out of their sale's granted count, once."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from patron.migrate import upgrade

T = "'2026-03-01 00:00:00'"


def test_upgrade_gives_returned_flash_units_back_to_their_sale(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0038_journeys_more")
    engine = create_engine(url)
    with engine.begin() as conn:
        for sale, granted in ((1, 5), (2, 2)):
            conn.execute(
                text(
                    "INSERT INTO mall_flash_sales (id, gift_id, points, quantity, granted, "
                    f"per_member_limit, starts_at, ends_at, created_at) VALUES (:s, 1, 100, 10, "
                    f":g, 1, {T}, {T}, {T})"
                ),
                {"s": sale, "g": granted},
            )
        # sale 1: units 2 returned, 1 cancelled (already given back), 2 kept; sale 2: none returned
        for i, (sale, quantity, status) in enumerate(
            [(1, 2, "returned"), (1, 1, "cancelled"), (1, 2, "fulfilled"), (2, 2, "shipped")],
            start=1,
        ):
            conn.execute(
                text(
                    "INSERT INTO mall_redemptions (id, code, member_id, gift_id, flash_sale_id, "
                    "quantity, points, cash_fen, warehouse, delivery, status, spend_posting_id, "
                    f"code_expires_at, created_at, updated_at) VALUES (:i, :c, 1, 1, :s, :q, 100, "
                    f"0, 'W1', 'ship', :st, :i, {T}, {T}, {T})"
                ),
                {"i": i, "c": f"R{i}", "s": sale, "q": quantity, "st": status},
            )
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        got = dict(conn.execute(text("SELECT id, granted FROM mall_flash_sales")).all())
    engine.dispose()
    assert got == {1: 3, 2: 2}
