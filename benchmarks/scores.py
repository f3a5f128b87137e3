"""Member scores and the models' holdout metrics on a simulated SQLite database.

    python benchmarks/scores.py --members 20000 [--seed 1] [--db PATH] [--lines] [--reuse]

Builds a migrated SQLite database with members who buy as the BG/NBD process says (gamma
purchase rates, a dropout chance after each purchase, spend per member from a gamma), two years
of history ending today, written with executemany — then times the nightly scores job (RFM in
SQL, BG/NBD, Gamma-Gamma, churn model) and `evaluate`, prints the evaluation as
`patron analytics evaluate` does, and a final JSON line. ``--lines`` gives every order one to
three lines (SKUs in ten categories, members favouring two), so the recommendations and the
category cycles have something to learn; ``--reuse`` times the jobs again on an existing
``--db`` without building it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from rich.console import Console
from sqlalchemy import func, insert, select

from patron.analytics import scores
from patron.analytics.report import print_evaluation
from patron.db import Database
from patron.members.models import Member
from patron.migrate import upgrade
from patron.orders.models import Order, OrderLine

TZ = ZoneInfo("Asia/Shanghai")
DAYS = 730


def simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, day offset 0..DAYS, paid fen) per purchase, vectorised over members."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, DAYS // 2, n)
    rate = rng.gamma(0.9, 1 / 25.0, n)  # purchases per day
    drop = rng.beta(1.0, 4.0, n)
    mean_fen = rng.gamma(4.0, 2500.0, n) + 100
    span = DAYS - start
    later = rng.poisson(rate * span)
    keep = np.minimum(later, rng.geometric(drop))  # repeat purchases before leaving
    member = np.repeat(np.arange(n), later)
    when = start[member] + rng.random(member.size) * span[member]
    order = np.lexsort((when, member))
    member, when = member[order], when[order]
    first_of = np.cumsum(later) - later
    rank = np.arange(member.size) - first_of[member]
    sel = rank < keep[member]
    member = np.concatenate([np.arange(n), member[sel]])
    day = np.concatenate([start, np.floor(when[sel]).astype(np.int64)])
    fen = np.maximum(1, rng.gamma(8.0, mean_fen[member] / 8)).astype(np.int64)
    return member + 1, day, fen


CATEGORIES = 10
SKUS_PER_CATEGORY = 20


def lines_for(member: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order index, SKU number, category) of 1–3 lines per order: each member favours two of
    the ten categories (four lines in five come from them), SKUs within a category by a
    Zipf-like popularity; so baskets co-occur by taste, not only by popularity."""
    rng = np.random.default_rng(seed + 1)
    n_members = int(member.max()) + 1
    taste = np.stack(
        [rng.integers(0, CATEGORIES, n_members), rng.integers(0, CATEGORIES, n_members)], axis=1
    )
    count = rng.integers(1, 4, member.size)
    order = np.repeat(np.arange(member.size), count)
    owner = member[order]
    favoured = rng.random(order.size) < 0.8
    category = np.where(
        favoured,
        taste[owner, rng.integers(0, 2, order.size)],
        rng.integers(0, CATEGORIES, order.size),
    )
    weights = 1.0 / np.arange(1, SKUS_PER_CATEGORY + 1)
    sku = rng.choice(SKUS_PER_CATEGORY, size=order.size, p=weights / weights.sum())
    return order, category * SKUS_PER_CATEGORY + sku, category


def build(url: str, n: int, seed: int, today: date, *, with_lines: bool = False) -> int:
    upgrade(url)
    db = Database(url)
    member, day, fen = simulate(n, seed)
    at = datetime.now(UTC) - timedelta(days=DAYS + 1)
    with db.unit_of_work() as s:
        s.execute(
            insert(Member),
            [
                {
                    "id": i,
                    "member_no": f"B{i:09d}",
                    "phone_enc": b"x",
                    "phone_index": f"idx-{i}",
                    "registration_channel": "web",
                    "status": "active",
                    "member_type": "regular",
                    "created_at": at,
                    "updated_at": at,
                }
                for i in range(1, n + 1)
            ],
        )
        base = today - timedelta(days=DAYS)
        rows = []
        for k, (m, d, f) in enumerate(
            zip(member.tolist(), day.tolist(), fen.tolist(), strict=True)
        ):
            bday = base + timedelta(days=d)
            stamp = datetime(bday.year, bday.month, bday.day, 2, tzinfo=UTC)
            rows.append(
                {
                    "member_id": m,
                    "source": "bench",
                    "external_id": f"O{k}",
                    "channel": "store",
                    "ordered_at": stamp,
                    "business_date": bday,
                    "status": "completed",
                    "list_total_fen": f,
                    "discount_fen": 0,
                    "total_fen": f,
                    "points_used": 0,
                    "points_fen": 0,
                    "paid_fen": f,
                    "points_earned": 0,
                    "growth_earned": 0,
                    "welcome_bonus": 0,
                    "first_purchase": False,
                    "rules_trace": {},
                    "content_hash": "0" * 64,
                    "refunded_fen": 0,
                    "created_at": stamp,
                }
            )
        s.execute(insert(Order), rows)
        if with_lines:
            order, sku, category = lines_for(member, seed)
            # Orders were inserted in order, ids from 1.
            first = np.r_[True, order[1:] != order[:-1]]
            line_no = np.arange(order.size) - np.maximum.accumulate(
                np.where(first, np.arange(order.size), 0)
            )
            s.execute(
                insert(OrderLine),
                [
                    {
                        "order_id": o + 1,
                        "line_no": ln + 1,
                        "sku": f"SKU{k:04d}",
                        "category": f"C{c:02d}",
                        "quantity": 1,
                        "unit_price_fen": 1000,
                        "discount_fen": 0,
                        "net_fen": 1000,
                        "points_fen": 0,
                        "points": 0,
                        "paid_fen": 1000,
                    }
                    for o, ln, k, c in zip(
                        order.tolist(),
                        line_no.tolist(),
                        sku.tolist(),
                        category.tolist(),
                        strict=True,
                    )
                ],
            )
    db.dispose()
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--lines", action="store_true", help="orders with lines (recommendations)")
    ap.add_argument("--reuse", action="store_true", help="time the jobs on an existing --db")
    args = ap.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "scores.db"
    url = f"sqlite:///{path}"
    now = datetime.now(UTC)
    today = now.astimezone(TZ).date()
    if args.reuse and path.exists():
        with Database(url).unit_of_work() as s:
            orders = int(s.scalar(select(func.count()).select_from(Order)) or 0)
    else:
        orders = build(url, args.members, args.seed, today, with_lines=args.lines)
    print(f"{args.members:,} members, {orders:,} orders in {path}")
    db = Database(url)
    result: dict[str, object] = {"members": args.members, "orders": orders}
    for name in ("scores", "evaluate"):
        wall, cpu = time.perf_counter(), time.process_time()
        with db.unit_of_work() as s:
            if name == "scores":
                run = scores.run_scores(s, now=now, tz=TZ)
            else:
                ev = scores.evaluate(s, now=now, tz=TZ)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{name}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        result[f"{name}_seconds"] = round(wall, 3)
    print(f"scores: churn risk from {run.churn_source}; missing: {list(run.missing)}")
    print_evaluation(Console(width=120), ev)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
