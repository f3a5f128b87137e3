"""Purchase histories written straight into members and orders (the analytics read only those
columns), so model tests can have hundreds of members without going through the API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy import insert

from patron.members.models import Member
from patron.orders.models import Order


def add_members(session, n: int, *, start_id: int = 1, at: datetime) -> list[int]:
    ids = list(range(start_id, start_id + n))
    session.execute(
        insert(Member),
        [
            {
                "id": i,
                "member_no": f"T{i:09d}",
                "phone_enc": b"x",
                "phone_index": f"idx-{i}",
                "registration_channel": "web",
                "status": "active",
                "member_type": "regular",
                "created_at": at,
                "updated_at": at,
            }
            for i in ids
        ],
    )
    return ids


def add_orders(session, orders: list[tuple[int, date, int]], *, status: str = "completed"):
    """(member id, business day, paid fen) per order."""
    session.execute(
        insert(Order),
        [
            {
                "member_id": m,
                "source": "test",
                "external_id": f"{m}-{d.isoformat()}-{k}",
                "channel": "store",
                "ordered_at": datetime.combine(d, time(2, 0), UTC),
                "business_date": d,
                "status": status,
                "list_total_fen": fen,
                "discount_fen": 0,
                "total_fen": fen,
                "points_used": 0,
                "points_fen": 0,
                "paid_fen": fen,
                "points_earned": 0,
                "growth_earned": 0,
                "welcome_bonus": 0,
                "first_purchase": False,
                "rules_trace": {},
                "content_hash": "0" * 64,
                "refunded_fen": 0,
                "created_at": datetime.combine(d, time(2, 0), UTC),
            }
            for k, (m, d, fen) in enumerate(orders)
        ],
    )


def simulate(members: list[int], *, until: date, seed: int = 3) -> list[tuple[int, date, int]]:
    """BG/NBD-like histories: each member starts within the first year of two, buys at a
    gamma-distributed rate, and may drop out after each purchase; spend varies per member."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, date, int]] = []
    span = 730
    for m in members:
        start = int(rng.integers(0, 365))
        rate = rng.gamma(0.9, 1 / 25.0)  # purchases per day
        drop = rng.beta(1.0, 4.0)
        mean_fen = int(rng.gamma(4.0, 2500.0)) + 100
        t = start
        while t <= span:
            out.append(
                (m, until - timedelta(days=span - t), max(1, int(rng.gamma(8.0, mean_fen / 8))))
            )
            if rng.random() < drop:
                break
            t += max(1, int(rng.exponential(1 / rate)))
    return out


def add_baskets(session, baskets: list[tuple[int, date, list[tuple[str, str]]]]) -> None:
    """Orders with lines: (member id, business day, [(sku, category), ...]) per order, each
    line one unit at 1,000 fen."""
    from sqlalchemy import select

    from patron.orders.models import OrderLine

    first = len(session.scalars(select(Order.id)).all())
    add_orders(session, [(m, d, 1000 * len(lines)) for m, d, lines in baskets])
    ids = session.scalars(select(Order.id).order_by(Order.id)).all()[first:]
    session.execute(
        insert(OrderLine),
        [
            {
                "order_id": oid,
                "line_no": n + 1,
                "sku": sku,
                "category": cat,
                "quantity": 1,
                "unit_price_fen": 1000,
                "discount_fen": 0,
                "net_fen": 1000,
                "points_fen": 0,
                "points": 0,
                "paid_fen": 1000,
            }
            for oid, (_, _, lines) in zip(ids, baskets, strict=True)
            for n, (sku, cat) in enumerate(lines)
        ],
    )


def simulate_fading(
    members: list[int], *, until: date, seed: int = 7
) -> list[tuple[int, date, int]]:
    """Histories in which leaving shows before the last purchase, so churn depends on more
    than recency. Each member buys at a steady personal pace (intervals gamma-distributed
    around it) and spends at a personal level; after each purchase they may start to fade —
    the more likely, the less they spend — and a fading member's intervals lengthen by 1.8×
    and their spend halves at every purchase until they stop, two to four purchases later.
    So a low-spending member whose last window held fewer purchases than their pace promises
    is likely to leave, while a high spender on a long regular pace is not: signals the churn
    model's spend, frequency and recent-purchase inputs carry and days since the last
    purchase alone does not."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, date, int]] = []
    span = 730
    for m in members:
        start = int(rng.integers(0, 400))
        pace = float(np.exp(rng.normal(np.log(30.0), 0.5)))  # days between purchases
        z = rng.normal()  # spend level in standard deviations
        level = 8000.0 * float(np.exp(0.8 * z))
        fade = 1.0 / (1.0 + np.exp(2.5 + 1.5 * z))  # per purchase
        t, fading, left = float(start), 0, 0
        while t <= span:
            spend = level * 0.5**fading
            day = until - timedelta(days=span - int(t))
            out.append((m, day, max(1, int(rng.gamma(8.0, spend / 8)))))
            if fading:
                if left == 0:
                    break
                left -= 1
                fading += 1
            elif rng.random() < fade:
                fading, left = 1, int(rng.integers(1, 4))
            t += max(1.0, rng.gamma(4.0, pace * 1.8**fading / 4.0))
    return out


def simulate_recency_only(
    members: list[int], *, until: date, seed: int = 5
) -> list[tuple[int, date, int]]:
    """Histories in which the days since the last purchase say nearly all there is to know
    about leaving: every member buys at the same Poisson rate (one purchase in 20 days) until
    an exponential lifetime ends (its mean differs per member, 200 days on average), and
    spends at a personal level unrelated to either. With one rate, a memoryless lifetime
    ends unseen except through recency, so no other input beats the recency baseline but by
    chance."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, date, int]] = []
    span = 730
    for m in members:
        t = float(rng.integers(0, 400))
        end = t + rng.exponential(rng.gamma(2.0, 100.0))
        level = float(rng.gamma(4.0, 2000.0))
        while t <= min(end, span):
            fen = int(rng.gamma(8.0, level / 8)) + 1
            out.append((m, until - timedelta(days=span - int(t)), fen))
            t += rng.exponential(20.0)
    return out
