"""Dynamic points price of slow movers (R4) and the history of every gift's price.

When ``markdown_enabled``, the job lowers the price of each slow mover (no redemption for
``slow_mover_days``) by ``markdown_step_percent`` % of the operator's price, at most once every
``markdown_every_days``, never below ``markdown_floor_percent`` % of it (``domain.
marked_down``). The operator's price is kept in ``base_points``; an operator's change of the
price ends the markdown (``service.upsert_gift``). Every change is a ``PriceChange`` row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.ledger.service import Ctx
from patron.mall import domain, replenish, service
from patron.mall.models import Gift, PriceChange


def apply_markdowns(session: Session, ctx: Ctx) -> list[PriceChange]:
    settings = service.get_settings(session)
    if not settings.markdown_enabled:
        return []
    last = dict(
        session.execute(
            select(PriceChange.gift_id, func.max(PriceChange.created_at))
            .where(PriceChange.reason == "slow_mover")
            .group_by(PriceChange.gift_id)
        ).all()
    )
    due_before = ctx.now - timedelta(days=settings.markdown_every_days)
    changes = []
    for alert in replenish.alerts(session, ctx.now):
        gift = alert.gift
        if not alert.slow_mover or (gift.id in last and last[gift.id] > due_before):
            continue
        base = gift.base_points or gift.points
        new = domain.marked_down(
            base, gift.points, settings.markdown_step_percent, settings.markdown_floor_percent
        )
        if new >= gift.points:
            continue  # at the floor already
        change = PriceChange(
            gift_id=gift.id,
            old_points=gift.points,
            new_points=new,
            reason="slow_mover",
            actor=ctx.actor.label[:120],
            created_at=ctx.now,
        )
        session.add(change)
        audit.record(
            session,
            ctx.actor,
            "mall.gift_markdown",
            "mall_gift",
            gift.code,
            {"points": gift.points},
            {"points": new, "base_points": base},
            at=ctx.now,
        )
        gift.base_points, gift.points, gift.updated_at = base, new, ctx.now
        changes.append(change)
    session.flush()
    return changes


def history(session: Session, gift: Gift, limit: int = 50) -> list[PriceChange]:
    return list(
        session.scalars(
            select(PriceChange)
            .where(PriceChange.gift_id == gift.id)
            .order_by(PriceChange.created_at.desc(), PriceChange.id.desc())
            .limit(limit)
        )
    )


def last_changed(session: Session) -> dict[int, datetime]:
    return dict(
        session.execute(
            select(PriceChange.gift_id, func.max(PriceChange.created_at)).group_by(
                PriceChange.gift_id
            )
        ).all()
    )
