"""A realistic retailer over two years: stores, catalogue, earning rules, and members with
personas buying with seasonality, paying with points, returning goods, reaching tiers.

Orders go through the same services as the POS API, in time order, with the clock set to each
order's time, so expiry, pending points and tier upgrades happen as they would have.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.db import Database
from patron.errors import PatronError
from patron.ledger import jobs as ledger_jobs
from patron.ledger import queries as ledger_queries
from patron.members.models import Member
from patron.orders import returns
from patron.orders import service as orders
from patron.orders.models import Order
from patron.orders.schemas import OrderIn, ReturnIn
from patron.program import service as program
from patron.rules.definitions import EarningRules

STORES = (
    ("BJ001", "北京国贸店", "North China", "北京"),
    ("BJ002", "北京望京店", "North China", "北京"),
    ("BJ003", "北京五道口店", "North China", "北京"),
    ("TJ001", "天津滨江道店", "North China", "天津"),
    ("SJZ01", "石家庄万象城店", "North China", "石家庄"),
    ("SH001", "上海南京西路店", "East China", "上海"),
    ("SH002", "上海陆家嘴店", "East China", "上海"),
    ("SH003", "上海徐家汇店", "East China", "上海"),
    ("HZ001", "杭州湖滨店", "East China", "杭州"),
    ("HZ002", "杭州西溪店", "East China", "杭州"),
    ("NJ001", "南京新街口店", "East China", "南京"),
    ("SZ101", "苏州观前街店", "East China", "苏州"),
    ("NB001", "宁波天一店", "East China", "宁波"),
    ("GZ001", "广州天河店", "South China", "广州"),
    ("GZ002", "广州北京路店", "South China", "广州"),
    ("SZ001", "深圳万象城店", "South China", "深圳"),
    ("SZ002", "深圳南山店", "South China", "深圳"),
    ("XM001", "厦门中山路店", "South China", "厦门"),
    ("FS001", "佛山祖庙店", "South China", "佛山"),
    ("CD001", "成都春熙路店", "Southwest China", "成都"),
    ("CD002", "成都太古里店", "Southwest China", "成都"),
    ("CQ001", "重庆解放碑店", "Southwest China", "重庆"),
    ("WH001", "武汉江汉路店", "Central China", "武汉"),
    ("CS001", "长沙五一广场店", "Central China", "长沙"),
    ("XA001", "西安钟楼店", "Northwest China", "西安"),
    ("SY001", "沈阳中街店", "Northeast China", "沈阳"),
    ("WEB01", "官方商城", "Online", None),
    ("MP001", "微信小程序", "Online", None),
)

# category: (name, [(product name, price range in fen)], coefficient bp)
CATALOGUE: dict[str, tuple[str, list[str], tuple[int, int]]] = {
    "fresh": (
        "生鲜 Fresh food",
        [
            "有机蔬菜礼盒",
            "进口牛排",
            "三文鱼刺身",
            "草莓",
            "车厘子",
            "土鸡蛋",
            "鲜牛奶",
            "大米 5kg",
            "五常大米",
            "时令水果篮",
        ],
        (1500, 18800),
    ),
    "daily": (
        "日用百货 Daily goods",
        [
            "洗衣液",
            "纸巾 12卷",
            "牙膏",
            "洗发水",
            "沐浴露",
            "垃圾袋",
            "厨房清洁剂",
            "保鲜膜",
            "毛巾",
            "洗碗机专用盐",
        ],
        (990, 8900),
    ),
    "beauty": (
        "美妆 Beauty",
        [
            "保湿面霜",
            "精华液",
            "防晒霜",
            "口红",
            "卸妆油",
            "面膜 10片",
            "眼霜",
            "粉底液",
            "爽肤水",
            "香水",
        ],
        (8900, 69900),
    ),
    "baby": (
        "母婴 Mother & baby",
        [
            "婴儿奶粉",
            "纸尿裤",
            "婴儿湿巾",
            "儿童餐具",
            "婴儿推车",
            "儿童绘本",
            "辅食米粉",
            "儿童牙刷",
            "安抚奶嘴",
            "婴儿润肤乳",
        ],
        (2900, 129900),
    ),
    "digital": (
        "数码 Digital",
        [
            "蓝牙耳机",
            "充电宝",
            "数据线",
            "智能手表",
            "平板保护套",
            "移动硬盘",
            "机械键盘",
            "无线鼠标",
            "手机壳",
            "智能音箱",
        ],
        (3900, 159900),
    ),
    "home": (
        "家居 Home",
        [
            "四件套",
            "记忆枕",
            "香薰蜡烛",
            "收纳箱",
            "保温杯",
            "不粘锅",
            "空气炸锅",
            "电热水壶",
            "地毯",
            "台灯",
        ],
        (2900, 59900),
    ),
}


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    orders_per_month: float
    basket_lines: tuple[int, int]
    points_payer: float  # chance of paying part of an order with points
    promo_bias: float  # extra pull of double-points and member days
    active_months: int | None  # buys only in the first N months after joining (dormant/churned)


PERSONAS = (
    Persona("high_frequency", 0.15, 3.0, (2, 5), 0.35, 1.0, None),
    Persona("brand_loyal", 0.20, 1.2, (1, 4), 0.25, 1.0, None),
    Persona("promotion_sensitive", 0.25, 0.9, (1, 3), 0.45, 4.0, None),
    Persona("dormant", 0.25, 0.8, (1, 3), 0.1, 1.0, 8),
    Persona("churned", 0.15, 1.0, (1, 3), 0.05, 1.0, 3),
)


def demo_rules() -> EarningRules:
    """Member day on the 8th, double points around 618 and 11.11, category coefficients."""
    return EarningRules.model_validate(
        {
            "category_coefficients": {"beauty": 15000, "baby": 12000, "fresh": 8000},
            "windows": [
                {
                    "kind": "monthly",
                    "id": "member_day",
                    "name": "会员日 Member day",
                    "days": [8],
                    "multiplier_bp": 20000,
                },
                *[
                    {
                        "kind": "date_range",
                        "id": f"double_{label}_{y}",
                        "name": f"{label} {y}",
                        "start": f"{y}-{start}",
                        "end": f"{y}-{end}",
                        "multiplier_bp": 20000,
                    }
                    for y in (2024, 2025, 2026, 2027)
                    for label, start, end in (("618", "06-16", "06-18"), ("1111", "11-09", "11-11"))
                ],
            ],
        }
    )


def _season(day: date) -> float:
    """Relative demand: Spring Festival, 618 and 11.11 peaks, a summer lull."""
    weight = 1.0
    if day.month in (1, 2):
        weight += 0.6
    if day.month == 6 and 10 <= day.day <= 18:
        weight += 1.2
    if day.month == 11 and 1 <= day.day <= 11:
        weight += 1.8
    if day.month in (7, 8):
        weight -= 0.2
    if day.month == 12:
        weight += 0.3
    return weight


def ensure_catalogue(session: Session, actor: Principal, now: datetime, rng: random.Random) -> None:
    for code, name, region, city in STORES:
        kind = "online" if region == "Online" else "store"
        catalog.upsert_store(
            session,
            actor,
            StoreIn(code=code, name=name, region=region, city=city, kind=kind),
            now=now,
        )
    for code, (name, products, (low, high)) in CATALOGUE.items():
        catalog.upsert_category(session, actor, CategoryIn(code=code, name=name), now=now)
        for i, product in enumerate(products, start=1):
            sku = f"{code[:3].upper()}-{i:04d}"
            price = int(math.exp(rng.uniform(math.log(low), math.log(high)))) // 10 * 10 + 9
            member_prices = {}
            if rng.random() < 0.3:
                member_prices = {"gold": price * 95 // 100, "diamond": price * 90 // 100}
            catalog.upsert_product(
                session,
                actor,
                ProductIn(
                    sku=sku,
                    name=product,
                    category_code=code,
                    price_fen=price,
                    member_prices=member_prices,
                ),
                now=now,
            )


@dataclass
class PlannedOrder:
    at: datetime
    member_no: str
    region: str
    persona: Persona
    n: int


def plan_orders(
    members: list[tuple[str, datetime, str | None]],
    now: datetime,
    rng: random.Random,
) -> list[PlannedOrder]:
    plans: list[PlannedOrder] = []
    for member_no, joined, region in members:
        persona = rng.choices(PERSONAS, [p.share for p in PERSONAS])[0]
        end = now
        if persona.active_months is not None:
            end = min(now, joined + timedelta(days=30 * persona.active_months))
        day = joined
        n = 0
        while day < end:
            d = day.date()
            rate = persona.orders_per_month / 30 * _season(d)
            if d.day == 8:
                rate *= 1 + persona.promo_bias
            if rng.random() < rate:
                hour = rng.choice((10, 11, 12, 14, 15, 17, 18, 19, 20, 21))
                at = datetime(d.year, d.month, d.day, hour, rng.randrange(60), tzinfo=UTC)
                at -= timedelta(hours=8)  # the hour above is Shanghai time
                if joined < at < end:
                    n += 1
                    plans.append(PlannedOrder(at, member_no, region or "East China", persona, n))
            day += timedelta(days=1)
    plans.sort(key=lambda p: (p.at, p.member_no))
    return plans


def load_history(
    db: Database,
    *,
    tz: ZoneInfo,
    now: datetime,
    rng_seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Orders, returns and points payments for every demo member, in time order."""
    rng = random.Random(rng_seed + 1)
    actor = Principal.system("demo")
    with db.unit_of_work() as s:
        if s.scalar(select(func.count()).select_from(Order)):
            return {"orders": 0, "returns": 0, "skipped": 1}
        ensure_catalogue(s, actor, now, rng)
        program.put_section(s, actor, orders.EARNING_SECTION, demo_rules(), now=now)
        members = [
            (m.member_no, m.created_at, m.region)
            for m in s.scalars(select(Member).order_by(Member.id))
        ]
        products = catalog.list_products(s, limit=1000)[0]
    by_category: dict[str, list[tuple[str, int]]] = {}
    for p in products:
        by_category.setdefault(p.category.code, []).append((p.sku, p.price_fen))
    stores_by_region: dict[str, list[str]] = {}
    for code, _name, region, _city in STORES:
        stores_by_region.setdefault(region, []).append(code)
    plans = plan_orders(members, now, rng)
    counts = {"orders": 0, "returns": 0, "points_payments": 0, "refused": 0}
    favourite: dict[str, list[str]] = {}
    month = None
    pending_returns: list[tuple[datetime, str, int]] = []
    batch = 100
    for start in range(0, len(plans), batch):
        chunk = plans[start : start + batch]
        current = (chunk[0].at.year, chunk[0].at.month)
        if month is not None and current != month:
            ledger_jobs.run_expire(db, chunk[0].at)
        month = current
        with db.unit_of_work() as s:
            for plan in chunk:
                cats = favourite.setdefault(
                    plan.member_no, rng.sample(sorted(CATALOGUE), k=rng.choice((1, 2, 3)))
                )
                lines: list[dict[str, Any]] = []
                for i in range(rng.randint(*plan.persona.basket_lines)):
                    cat = rng.choice(cats) if rng.random() < 0.8 else rng.choice(sorted(CATALOGUE))
                    sku, price = rng.choice(by_category[cat])
                    lines.append(
                        {
                            "line_no": i + 1,
                            "sku": sku,
                            "quantity": rng.choice((1, 1, 1, 2, 3)),
                            "unit_price_fen": price,
                        }
                    )
                total = sum(ln["quantity"] * ln["unit_price_fen"] for ln in lines)
                online = rng.random() < 0.3
                channel = rng.choice(("online", "mini_program")) if online else "store"
                store = (
                    rng.choice(("WEB01", "MP001"))
                    if online
                    else rng.choice(stores_by_region.get(plan.region, ["SH001"]))
                )
                payments = _payments(s, plan, total, rng, counts)
                body = OrderIn(
                    source="demo",
                    external_id=f"D{start + chunk.index(plan):07d}",
                    member_no=plan.member_no,
                    channel=channel,
                    store_code=store,
                    ordered_at=plan.at,
                    lines=lines,
                    payments=payments,
                )
                try:
                    with s.begin_nested():
                        orders.ingest_order(s, actor, body, now=plan.at, tz=tz)
                except PatronError:
                    counts["refused"] += 1
                    continue
                counts["orders"] += 1
                if rng.random() < 0.04:
                    pending_returns.append(
                        (
                            plan.at + timedelta(days=rng.randint(1, 10)),
                            body.external_id,
                            rng.choice(lines)["line_no"],
                        )
                    )
            due = [r for r in pending_returns if r[0] <= chunk[-1].at]
            pending_returns = [r for r in pending_returns if r[0] > chunk[-1].at]
            for at, ext, line_no in due:
                ctx = orders.make_ctx(s, actor, at, tz)
                try:
                    with s.begin_nested():
                        returns.record_return(
                            s,
                            ctx,
                            "demo",
                            ext,
                            ReturnIn(
                                external_id=f"R{ext}",
                                returned_at=at,
                                lines=[{"line_no": line_no, "quantity": 1}],
                            ),
                        )
                    counts["returns"] += 1
                except PatronError:
                    counts["refused"] += 1
        if progress:
            progress(min(start + batch, len(plans)), len(plans))
    ledger_jobs.run_expire(db, now)
    return counts


def _payments(
    s: Session, plan: PlannedOrder, total: int, rng: random.Random, counts: dict[str, int]
) -> list[dict[str, int | str]]:
    method = rng.choice(("wechat", "wechat", "alipay", "card", "cash"))
    if total >= 2000 and rng.random() < plan.persona.points_payer:
        member_id = s.scalar(select(Member.id).where(Member.member_no == plan.member_no))
        available = ledger_queries.balance(s, member_id or 0, plan.at).available if member_id else 0
        settings = orders.pricing_settings(s)
        cap_fen = total * settings.max_points_share_bp // 10_000
        use_fen = min(cap_fen, available * settings.unit_fen // settings.points_per_unit)
        use_fen = use_fen * rng.randint(3, 10) // 10 // 100 * 100
        if use_fen >= 100:
            points = use_fen * settings.points_per_unit // settings.unit_fen
            counts["points_payments"] += 1
            return [
                {"method": "points", "amount_fen": use_fen, "points": points},
                {"method": method, "amount_fen": total - use_fen},
            ]
    return [{"method": method, "amount_fen": total}]
