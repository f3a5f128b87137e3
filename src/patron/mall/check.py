"""``patron check`` for the mall: stock, its movement ledger, redemptions and flash sales agree.

1. Per gift and warehouse, the movements sum to the cached on-hand and reserved figures.
2. Reserved units are exactly the units of redemptions still reserved.
3. Each redemption's own movements match its status (reserved: +q reserved; handed over:
   -q on hand; cancelled or returned: nothing left), and its points: one spend of its points,
   reversed exactly when it is cancelled or returned.
4. A flash sale has granted exactly the units of its redemptions neither cancelled nor
   returned (a returned unit is the sale's again).
5. A gift's price is the one its price history ends with (no change escaped the history),
   and a marked-down price lies between one point and the operator's price.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from patron.ledger.models import PointsPosting
from patron.mall import domain
from patron.mall.models import FlashSale, Gift, PriceChange, Redemption, Stock, StockMovement

LIMIT = 100


def run_check(
    session: Session,
    *,
    now: datetime | None = None,  # noqa: ARG001 - every domain check has this signature
    member_id: int | None = None,
) -> list[str]:
    out: list[str] = []

    def only(col: Any) -> Any:
        return col == member_id if member_id is not None else literal(True)

    # 1. movements = cached figures (a row missing on either side counts as zero)
    sums = (
        select(
            StockMovement.gift_id.label("gid"),
            StockMovement.warehouse.label("wh"),
            func.sum(StockMovement.on_hand_delta).label("oh"),
            func.sum(StockMovement.reserved_delta).label("rs"),
        )
        .group_by(StockMovement.gift_id, StockMovement.warehouse)
        .subquery()
    )
    left = select(
        sums.c.gid, sums.c.wh, sums.c.oh, sums.c.rs, Stock.on_hand, Stock.reserved
    ).outerjoin(Stock, (Stock.gift_id == sums.c.gid) & (Stock.warehouse == sums.c.wh))
    right = (
        select(
            Stock.gift_id, Stock.warehouse, literal(0), literal(0), Stock.on_hand, Stock.reserved
        )
        .outerjoin(sums, (Stock.gift_id == sums.c.gid) & (Stock.warehouse == sums.c.wh))
        .where(sums.c.gid.is_(None))
    )
    for gid, wh, oh, rs, on_hand, reserved in session.execute(left.union_all(right)):
        if (int(oh or 0), int(rs or 0)) != (int(on_hand or 0), int(reserved or 0)):
            out.append(
                f"stock of gift {gid} in {wh}: movements sum to on hand {oh or 0} / reserved "
                f"{rs or 0}, the stock row says {on_hand or 0} / {reserved or 0}"
            )
        if on_hand is not None and (on_hand < 0 or reserved < 0 or reserved > on_hand):
            out.append(f"stock of gift {gid} in {wh} is impossible: {on_hand} / {reserved}")

    # 2. reserved = units of reserved redemptions
    held = (
        select(
            Redemption.gift_id.label("gid"),
            Redemption.warehouse.label("wh"),
            func.sum(Redemption.quantity).label("q"),
        )
        .where(Redemption.status == "reserved")
        .group_by(Redemption.gift_id, Redemption.warehouse)
        .subquery()
    )
    for gid, wh, reserved, q in session.execute(
        select(Stock.gift_id, Stock.warehouse, Stock.reserved, func.coalesce(held.c.q, 0))
        .outerjoin(held, (held.c.gid == Stock.gift_id) & (held.c.wh == Stock.warehouse))
        .where(Stock.reserved != func.coalesce(held.c.q, 0))
        .limit(LIMIT)
    ):
        out.append(
            f"stock of gift {gid} in {wh}: {reserved} reserved, but reserved redemptions hold {q}"
        )

    # 3. each redemption's movements and points match its status
    mv = (
        select(
            StockMovement.redemption_id.label("rid"),
            func.sum(StockMovement.on_hand_delta).label("oh"),
            func.sum(StockMovement.reserved_delta).label("rs"),
            func.sum(case((StockMovement.kind == "reservation", 1), else_=0)).label("n"),
        )
        .where(StockMovement.redemption_id.is_not(None))
        .group_by(StockMovement.redemption_id)
        .subquery()
    )
    rev = (
        select(
            PointsPosting.reverses_id.label("sid"),
            func.sum(PointsPosting.available_delta).label("back"),
        )
        .where(PointsPosting.reverses_id.is_not(None))
        .group_by(PointsPosting.reverses_id)
        .subquery()
    )
    spend = PointsPosting
    rows = session.execute(
        select(
            Redemption.code,
            Redemption.status,
            Redemption.quantity,
            Redemption.points,
            Redemption.member_id,
            func.coalesce(mv.c.oh, 0),
            func.coalesce(mv.c.rs, 0),
            func.coalesce(mv.c.n, 0),
            spend.available_delta,
            spend.member_id,
            func.coalesce(rev.c.back, 0),
        )
        .outerjoin(mv, mv.c.rid == Redemption.id)
        .outerjoin(spend, spend.id == Redemption.spend_posting_id)
        .outerjoin(rev, rev.c.sid == Redemption.spend_posting_id)
        .where(only(Redemption.member_id))
    )
    bad = 0
    for code, status, q, points, mid, oh, rs, n, spent, spend_mid, back in rows:
        want_rs = q if status == "reserved" else 0
        # a returned unit left (shipment) and came back (return): nothing on hand net
        want_oh = -q if status in ("fulfilled", "shipped", "received") else 0
        problems = []
        if (int(oh), int(rs), int(n)) != (want_oh, want_rs, 1):
            problems.append(
                f"its stock movements net on hand {oh} / reserved {rs} over {n} reservation(s), "
                f"expected {want_oh} / {want_rs} over 1"
            )
        if spent is None or spend_mid != mid or -int(spent) != points:
            problems.append(f"its spend posting does not debit {points} points from the member")
        want_back = points if status in ("cancelled", "returned") else 0
        if int(back) != want_back:
            problems.append(f"{back} points were given back, expected {want_back}")
        for p in problems:
            if bad < LIMIT:
                out.append(f"redemption {code} ({status}): {p}")
            bad += 1

    # 4. flash sales granted exactly their live redemptions' units
    live = (
        select(Redemption.flash_sale_id.label("fid"), func.sum(Redemption.quantity).label("q"))
        .where(Redemption.flash_sale_id.is_not(None), Redemption.status.not_in(domain.UNDONE))
        .group_by(Redemption.flash_sale_id)
        .subquery()
    )
    for sid, gift_code, granted, q in session.execute(
        select(FlashSale.id, Gift.code, FlashSale.granted, func.coalesce(live.c.q, 0))
        .join(Gift, Gift.id == FlashSale.gift_id)
        .outerjoin(live, live.c.fid == FlashSale.id)
        .where(FlashSale.granted != func.coalesce(live.c.q, 0))
        .limit(LIMIT)
    ):
        out.append(
            f"flash sale {sid} of {gift_code} granted {granted} unit(s), its redemptions hold {q}"
        )
    # 5. the price is where its history ends
    last = (
        select(PriceChange.gift_id.label("gid"), func.max(PriceChange.id).label("pid"))
        .group_by(PriceChange.gift_id)
        .subquery()
    )
    for code, points, base, logged in session.execute(
        select(Gift.code, Gift.points, Gift.base_points, PriceChange.new_points)
        .outerjoin(last, last.c.gid == Gift.id)
        .outerjoin(PriceChange, PriceChange.id == last.c.pid)
        .where(
            ((PriceChange.id.is_not(None)) & (PriceChange.new_points != Gift.points))
            | ((Gift.base_points.is_not(None)) & (Gift.points > Gift.base_points))
        )
        .limit(LIMIT)
    ):
        if logged is not None and logged != points:
            out.append(f"gift {code} costs {points} points; its price history ends at {logged}")
        if base is not None and points > base:
            out.append(f"gift {code} is marked down to {points} points, above its price {base}")
    return out
