"""Demo staff, an integration key and members, deterministic by seed.

Running it again reuses what exists: staff and the key are looked up by name, members by phone.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.auth import service as auth_service
from patron.auth.models import ApiKey, StaffUser
from patron.auth.principal import Principal
from patron.kit.clock import Clock
from patron.kit.crypto import FieldCipher
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import Consents, MemberCreate

DEMO_STAFF = (
    ("admin", "演示管理员 Demo Admin", "admin"),
    ("operator", "运营 Demo Operator", "operator"),
    ("clerk", "店员 Demo Clerk", "clerk"),
    ("analyst", "分析 Demo Analyst", "analyst"),
)
DEMO_PASSWORD_SUFFIX = "-demo-2026"
DEMO_KEY_NAME = "Demo POS"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玲晨宇浩然子涵欣怡梓轩雨桐"
CITIES = (
    ("北京", "North China"),
    ("天津", "North China"),
    ("石家庄", "North China"),
    ("上海", "East China"),
    ("杭州", "East China"),
    ("南京", "East China"),
    ("苏州", "East China"),
    ("广州", "South China"),
    ("深圳", "South China"),
    ("厦门", "South China"),
    ("成都", "Southwest China"),
    ("重庆", "Southwest China"),
    ("武汉", "Central China"),
)
STORES = {
    "North China": ["BJ001", "BJ002", "TJ001"],
    "East China": ["SH001", "SH002", "HZ001", "NJ001"],
    "South China": ["GZ001", "SZ001", "XM001"],
    "Southwest China": ["CD001", "CQ001"],
    "Central China": ["WH001"],
}
CHANNEL_WEIGHTS = (
    ("store", 45),
    ("mini_program", 25),
    ("app", 12),
    ("web", 8),
    ("kiosk", 6),
    ("partner", 4),
)
TAGS = ("母婴", "美妆达人", "生鲜常客", "数码控", "价格敏感", "VIP沙龙", "企业采购")
MOBILE_PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "158", "186", "188", "177")


@dataclass
class DemoResult:
    staff: list[tuple[str, str, str]]  # username, password, role
    api_key: str
    members_created: int
    members_total: int


def demo_password(username: str) -> str:
    return f"{username}{DEMO_PASSWORD_SUFFIX}"


def seed(
    session: Session,
    cipher: FieldCipher,
    clock: Clock,
    tz: ZoneInfo,
    *,
    members_count: int = 500,
    rng_seed: int = 2026,
    credentials_file: Path,
) -> DemoResult:
    system = Principal.system("demo")
    now = clock.now()
    staff: list[tuple[str, str, str]] = []
    for username, display, role in DEMO_STAFF:
        if session.scalar(select(StaffUser).where(StaffUser.username == username)) is None:
            auth_service.create_staff(
                session,
                system,
                username=username,
                display_name=display,
                role=role,
                password=demo_password(username),
                now=now,
            )
        staff.append((username, demo_password(username), role))
    api_key = _demo_key(session, system, credentials_file, now)

    rng = random.Random(rng_seed)
    created = 0
    clerk_ids = list(session.scalars(select(StaffUser.id).order_by(StaffUser.id)))
    for i in range(members_count):
        # Draw everything for this member first, so a re-run draws the same sequence.
        data = _member(rng, i, now.date(), clerk_ids)
        # Members joined over the last two years, more of them recently.
        joined = now - timedelta(days=int(730 * rng.random() ** 1.5), minutes=rng.randrange(1440))
        tags = rng.sample(TAGS, k=rng.choice((0, 0, 1, 1, 2)))
        if members.find_by_phone(session, cipher, data.phone) is not None:
            continue
        m = members.register(session, system, cipher, data, now=joined, tz=tz)
        created += 1
        for tag in tags:
            members.add_tag(session, system, m.member_no, tag, now=joined)
        if i % 200 == 199:
            session.flush()
    total = session.scalar(select(func.count()).select_from(Member)) or 0
    return DemoResult(staff=staff, api_key=api_key, members_created=created, members_total=total)


def _demo_key(session: Session, system: Principal, credentials_file: Path, now: object) -> str:
    if credentials_file.exists():
        saved = json.loads(credentials_file.read_text())
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == saved.get("prefix")))
        if key is not None and key.revoked_at is None:
            return str(saved["api_key"])
    created = auth_service.create_api_key(
        session,
        system,
        name=DEMO_KEY_NAME,
        scopes=[
            "members:read",
            "members:write",
            "points:read",
            "points:write",
            "tiers:read",
            "orders:read",
            "orders:write",
            "catalog:write",
        ],
        now=now,  # type: ignore[arg-type]
    )
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.write_text(
        json.dumps({"api_key": created.secret, "prefix": created.key.prefix}, indent=2)
    )
    credentials_file.chmod(0o600)
    return created.secret


def _member(rng: random.Random, i: int, today: date, staff_ids: list[int]) -> MemberCreate:
    phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    city, region = rng.choice(CITIES)
    channel = rng.choices([c for c, _ in CHANNEL_WEIGHTS], [w for _, w in CHANNEL_WEIGHTS])[0]
    store = rng.choice(STORES[region]) if channel in ("store", "kiosk") else None
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    age_days = rng.randrange(18 * 365, 70 * 365)
    has_email = rng.random() < 0.55
    return MemberCreate(
        phone=phone,
        channel=channel,
        store_code=store,
        referrer_staff_id=rng.choice(staff_ids)
        if store and staff_ids and rng.random() < 0.3
        else None,
        name=name,
        email=f"member{i}@example.com" if has_email else None,
        birthday=today - timedelta(days=age_days) if rng.random() < 0.8 else None,
        gender=rng.choice(("female", "female", "male", "undisclosed")),
        city=city,
        region=region,
        preferred_channel=rng.choice(("sms", "wechat", "email", "push")),
        member_type=rng.choices(
            ["regular", "vip", "enterprise", "student", "senior"], [80, 6, 3, 6, 5]
        )[0],
        consents=Consents(
            sms=rng.random() < 0.7,
            email=has_email and rng.random() < 0.5,
            push=rng.random() < 0.4,
            wechat=rng.random() < 0.6,
        ),
    )
