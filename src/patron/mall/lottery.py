"""Points lottery (R7): wheel and blind box.

A pool's prizes carry probabilities in parts per million that sum to exactly one; replacing
them makes a new pool version (old prize rows stay, so every draw names the version it used).
A draw: the member's ledger lock, the day's count under it (the daily limit, also held by a
unique key), a roll from ``secrets`` in [0, 1,000,000), the prize it lands on; a prize with
stock is taken by a guarded UPDATE, and when it is out of stock the draw gives the pool's
fallback prize instead (documented in docs/mall.md). The cost is spent and a points prize
earned through the ledger flows, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.errors import Conflict, Invalid, NotFound
from patron.kit.timeutil import business_date
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.mall import domain, service
from patron.mall.domain import PrizeOdds, Rng, SystemRng
from patron.mall.models import LotteryDraw, LotteryPool, LotteryPrize
from patron.mall.schemas import PoolIn
from patron.members.models import Member
from patron.webhooks import events


def _prizes(session: Session, pool: LotteryPool) -> list[LotteryPrize]:
    return list(
        session.scalars(
            select(LotteryPrize)
            .where(LotteryPrize.pool_id == pool.id, LotteryPrize.version == pool.version)
            .order_by(LotteryPrize.position)
            .execution_options(populate_existing=True)
        )
    )


def get_pool(session: Session, code: str) -> tuple[LotteryPool, list[LotteryPrize]]:
    pool = session.scalar(select(LotteryPool).where(LotteryPool.code == code))
    if pool is None:
        raise NotFound("lottery_not_found", f"No lottery with code {code}.")
    return pool, _prizes(session, pool)


def put_pool(session: Session, ctx: Ctx, data: PoolIn) -> tuple[LotteryPool, list[LotteryPrize]]:
    domain.validate_pool([(p.ppm, p.stock, p.is_fallback) for p in data.prizes])
    for p in data.prizes:
        if (p.kind == "points") != (p.award_points > 0):
            raise Invalid(
                "invalid_prize",
                f"Prize {p.name!r}: a points prize awards some points, other prizes none.",
                details={"field": "award_points"},
            )
    pool = session.scalar(
        select(LotteryPool).where(LotteryPool.code == data.code).with_for_update()
    )
    if pool is None:
        pool = LotteryPool(code=data.code, version=1, created_at=ctx.now)
        session.add(pool)
    else:
        pool.version += 1
    pool.name, pool.kind, pool.cost_points = data.name, data.kind, data.cost_points
    pool.daily_limit, pool.is_active, pool.updated_at = data.daily_limit, data.is_active, ctx.now
    session.flush()
    prizes = [
        LotteryPrize(
            pool_id=pool.id,
            version=pool.version,
            position=i,
            name=p.name,
            kind=p.kind,
            award_points=p.award_points,
            ppm=p.ppm,
            stock=p.stock,
            is_fallback=p.is_fallback,
        )
        for i, p in enumerate(data.prizes)
    ]
    session.add_all(prizes)
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "mall.lottery_put",
        "mall_lottery",
        pool.code,
        None,
        {
            "version": pool.version,
            "cost_points": pool.cost_points,
            "daily_limit": pool.daily_limit,
            "prizes": [
                {"name": p.name, "kind": p.kind, "ppm": p.ppm, "stock": p.stock} for p in prizes
            ],
        },
        at=ctx.now,
    )
    return pool, prizes


def set_open(session: Session, ctx: Ctx, code: str, is_open: bool) -> LotteryPool:
    """Close a pool (no draw from now on) or open it again; its prizes and version stay."""
    pool = session.scalar(
        select(LotteryPool)
        .where(LotteryPool.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if pool is None:
        raise NotFound("lottery_not_found", f"No lottery with code {code}.")
    if pool.is_active == is_open:
        return pool
    pool.is_active, pool.updated_at = is_open, ctx.now
    session.flush()
    change = {"version": pool.version, "active": is_open}
    if is_open:
        audit.record(
            session, ctx.actor, "mall.lottery_open", "mall_lottery", code, None, change, at=ctx.now
        )
    else:
        audit.record(
            session, ctx.actor, "mall.lottery_close", "mall_lottery", code, None, change, at=ctx.now
        )
    return pool


@dataclass(frozen=True, slots=True)
class DrawResult:
    draw: LotteryDraw
    pool: LotteryPool
    prize: LotteryPrize
    left_today: int


def draw(
    session: Session, ctx: Ctx, member: Member, pool_code: str, rng: Rng | None = None
) -> DrawResult:
    pool, prizes = get_pool(session, pool_code)
    if not pool.is_active or not prizes:
        raise Conflict("lottery_closed", f"Lottery {pool_code} is not open.")
    ledger.begin(session, ctx, member.id)  # serialises one member's draws
    day = business_date(ctx.now, ctx.tz)
    done = int(
        session.scalar(
            select(func.count(LotteryDraw.id)).where(
                LotteryDraw.member_id == member.id,
                LotteryDraw.pool_id == pool.id,
                LotteryDraw.business_date == day,
            )
        )
        or 0
    )
    if done >= pool.daily_limit:
        raise Conflict(
            "over_daily_limit",
            f"You have used all {pool.daily_limit} draws of {pool.name} today.",
            details={"limit": pool.daily_limit},
        )
    odds = [PrizeOdds(p.id, p.ppm, p.stock, p.is_fallback) for p in prizes]
    roll = (rng or SystemRng()).randbelow(domain.PPM)
    drawn = domain.pick(odds, roll)
    given = drawn
    if drawn.stock is not None:
        res = session.execute(
            update(LotteryPrize)
            .where(LotteryPrize.id == drawn.id, LotteryPrize.stock > 0)
            .values(stock=LotteryPrize.stock - 1)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            given = domain.fallback_of(odds)
    seq = done + 1
    key = f"{pool.id}:{member.id}:{day.isoformat()}:{seq}"
    spent = flows.spend(
        session,
        ctx,
        member.id,
        points=pool.cost_points,
        source_type=service.LOTTERY_SOURCE,
        source_id=key,
        reason=f"lottery {pool.code}",
    )
    prize = next(p for p in prizes if p.id == given.id)
    award = None
    if prize.kind == "points" and prize.award_points > 0:
        award = flows.earn(
            session,
            ctx,
            member.id,
            points=prize.award_points,
            source_type=service.LOTTERY_SOURCE,
            source_id=key,
            reason=f"lottery {pool.code}: {prize.name}",
            pending_days=0,
        ).posting.posting_id
    row = LotteryDraw(
        pool_id=pool.id,
        pool_version=pool.version,
        member_id=member.id,
        business_date=day,
        seq=seq,
        drawn_prize_id=drawn.id,
        prize_id=prize.id,
        roll=roll,
        spend_posting_id=spent.posting_id,
        award_posting_id=award,
        created_at=ctx.now,
    )
    session.add(row)
    session.flush()
    payload = {
        "member_no": member.member_no,
        "pool_code": pool.code,
        "pool_version": pool.version,
        "prize": prize.name,
        "prize_kind": prize.kind,
        "fell_back": drawn.id != prize.id,
        "points_spent": pool.cost_points,
        "points_awarded": prize.award_points if prize.kind == "points" else 0,
    }
    events.emit(session, "mall.lottery.drawn", payload, ctx.now, member_id=member.id)
    audit.record(
        session,
        ctx.actor,
        "mall.lottery_draw",
        "mall_lottery",
        pool.code,
        None,
        payload,
        at=ctx.now,
    )
    return DrawResult(row, pool, prize, pool.daily_limit - seq)


def get_draw(session: Session, member_id: int, draw_id: int) -> DrawResult:
    """One of a member's draws, with the pool version and prize it had (another member's draw
    is simply not there)."""
    row = session.execute(
        select(LotteryDraw, LotteryPool, LotteryPrize)
        .join(LotteryPool, LotteryPool.id == LotteryDraw.pool_id)
        .join(LotteryPrize, LotteryPrize.id == LotteryDraw.prize_id)
        .where(LotteryDraw.id == draw_id, LotteryDraw.member_id == member_id)
    ).first()
    if row is None:
        raise NotFound("lottery_draw_not_found", f"No lottery draw {draw_id}.")
    d, pool, prize = row
    left = draws_left(session, member_id, [pool], d.business_date)[pool.id]
    return DrawResult(d, pool, prize, left)


def pools(
    session: Session, *, active_only: bool = False
) -> list[tuple[LotteryPool, list[LotteryPrize]]]:
    """Every pool with the prizes of its current version (the published odds)."""
    q = select(LotteryPool).order_by(LotteryPool.code)
    if active_only:
        q = q.where(LotteryPool.is_active.is_(True))
    return [(p, _prizes(session, p)) for p in session.scalars(q)]


def draws_left(
    session: Session, member_id: int, pools_: list[LotteryPool], day: date
) -> dict[int, int]:
    """Draws a member has left today, per pool id (a read for pages; the draw re-counts locked)."""
    if not pools_:
        return {}
    done = dict(
        session.execute(
            select(LotteryDraw.pool_id, func.count(LotteryDraw.id))
            .where(
                LotteryDraw.member_id == member_id,
                LotteryDraw.business_date == day,
                LotteryDraw.pool_id.in_([p.id for p in pools_]),
            )
            .group_by(LotteryDraw.pool_id)
        ).all()
    )
    return {p.id: max(p.daily_limit - int(done.get(p.id, 0)), 0) for p in pools_}
