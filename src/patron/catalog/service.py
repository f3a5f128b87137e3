"""Catalogue use cases: create-or-update by natural key (store code, category code, SKU)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.catalog.models import Category, MemberPrice, Product, Store
from patron.catalog.schemas import (
    CategoryIn,
    CategoryOut,
    ProductIn,
    ProductOut,
    StoreIn,
    StoreOut,
)
from patron.errors import Invalid, NotFound

#: What a product's view and its edit need besides its columns, stated at every load.
PRODUCT_LOADS: Final = (joinedload(Product.category), selectinload(Product.member_prices))

DEFAULT_CATEGORIES = (
    ("fresh", "生鲜 Fresh food"),
    ("daily", "日用百货 Daily goods"),
    ("beauty", "美妆 Beauty"),
    ("baby", "母婴 Mother & baby"),
    ("digital", "数码 Digital"),
    ("home", "家居 Home"),
)


# ---- stores ----------------------------------------------------------------------------------


def _store_snapshot(s: Store) -> dict[str, Any]:
    return {
        "name": s.name,
        "region": s.region,
        "city": s.city,
        "kind": s.kind,
        "active": s.is_active,
    }


def upsert_store(session: Session, actor: Principal, data: StoreIn, *, now: datetime) -> Store:
    store = session.scalar(select(Store).where(Store.code == data.code))
    before = _store_snapshot(store) if store else None
    if store is None:
        store = Store(code=data.code, created_at=now)
        session.add(store)
    store.name, store.region, store.city = data.name, data.region, data.city
    store.kind, store.is_active, store.updated_at = data.kind, data.is_active, now
    session.flush()
    after = _store_snapshot(store)
    if before != after:
        action = "store.create" if before is None else "store.update"
        audit.record(session, actor, action, "store", store.code, before, after, at=now)
    return store


def get_store(session: Session, code: str) -> Store:
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise NotFound("store_not_found", f"No store with code {code}.")
    return store


def store_names(session: Session, codes: set[str]) -> dict[str, str]:
    """Store code → name for the codes that are stores (one query)."""
    if not codes:
        return {}
    rows = session.execute(select(Store.code, Store.name).where(Store.code.in_(sorted(codes))))
    return dict(rows.all())


def category_names(session: Session, codes: set[str]) -> dict[str, str]:
    """Category code → name for the codes that are categories (one query)."""
    if not codes:
        return {}
    rows = session.execute(
        select(Category.code, Category.name).where(Category.code.in_(sorted(codes)))
    )
    return dict(rows.all())


def store_exists(session: Session, code: str) -> bool:
    return session.scalar(select(Store.id).where(Store.code == code)) is not None


def existing_store_codes(session: Session, codes: set[str]) -> set[str]:
    """Which of ``codes`` are stores (one query for a whole import batch)."""
    if not codes:
        return set()
    return set(session.scalars(select(Store.code).where(Store.code.in_(sorted(codes)))))


def list_stores(session: Session, region: str | None = None) -> list[Store]:
    q = select(Store).order_by(Store.code)
    if region:
        q = q.where(Store.region == region)
    return list(session.scalars(q))


def store_out(s: Store) -> StoreOut:
    return StoreOut(
        code=s.code,
        name=s.name,
        region=s.region,
        city=s.city,
        kind=s.kind,
        is_active=s.is_active,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


# ---- categories ------------------------------------------------------------------------------


def upsert_category(
    session: Session, actor: Principal, data: CategoryIn, *, now: datetime
) -> Category:
    parent_id = None
    if data.parent_code is not None:
        if data.parent_code == data.code:
            raise Invalid(
                "category_cycle",
                "A category cannot be its own parent.",
                details={"field": "parent_code"},
            )
        parent = session.scalar(select(Category).where(Category.code == data.parent_code))
        if parent is None:
            raise Invalid(
                "category_not_found",
                f"No parent category with code {data.parent_code}.",
                details={"field": "parent_code"},
            )
        parent_id = parent.id
    cat = session.scalar(select(Category).where(Category.code == data.code))
    before = {"name": cat.name, "parent_id": cat.parent_id} if cat else None
    if cat is None:
        cat = Category(code=data.code, created_at=now)
        session.add(cat)
    cat.name, cat.parent_id = data.name, parent_id
    session.flush()
    after = {"name": cat.name, "parent_id": cat.parent_id}
    if before != after:
        action = "category.create" if before is None else "category.update"
        audit.record(session, actor, action, "category", cat.code, before, after, at=now)
    return cat


def list_categories(session: Session) -> list[CategoryOut]:
    parent = Category.__table__.alias("parent")
    rows = session.execute(
        select(Category.code, Category.name, parent.c.code)
        .outerjoin(parent, parent.c.id == Category.parent_id)
        .order_by(Category.code)
    )
    return [CategoryOut(code=r[0], name=r[1], parent_code=r[2]) for r in rows]


def ensure_default_categories(session: Session, actor: Principal, *, now: datetime) -> None:
    for code, name in DEFAULT_CATEGORIES:
        if session.scalar(select(Category.id).where(Category.code == code)) is None:
            upsert_category(session, actor, CategoryIn(code=code, name=name), now=now)


# ---- products --------------------------------------------------------------------------------


def _product_snapshot(p: Product) -> dict[str, Any]:
    return {
        "name": p.name,
        "category": p.category.code if p.category else None,
        "price_fen": p.price_fen,
        "member_prices": {m.tier_code: m.price_fen for m in p.member_prices},
        "active": p.is_active,
    }


def upsert_product(
    session: Session, actor: Principal, data: ProductIn, *, now: datetime
) -> Product:
    category = session.scalar(select(Category).where(Category.code == data.category_code))
    if category is None:
        raise Invalid(
            "category_not_found",
            f"No category with code {data.category_code}.",
            details={"field": "category_code"},
        )
    over = sorted(t for t, p in data.member_prices.items() if p > data.price_fen)
    if over:
        raise Invalid(
            "member_price_above_price",
            f"Member prices must not exceed the list price (tiers: {', '.join(over)}).",
            details={"field": "member_prices"},
        )
    product = session.scalar(select(Product).where(Product.sku == data.sku).options(*PRODUCT_LOADS))
    before = _product_snapshot(product) if product else None
    if product is None:
        product = Product(sku=data.sku, created_at=now, member_prices=[])  # known empty
        session.add(product)
    product.name, product.category_id, product.category = data.name, category.id, category
    product.price_fen, product.is_active, product.updated_at = data.price_fen, data.is_active, now
    existing = {m.tier_code: m for m in product.member_prices}
    for tier, price in data.member_prices.items():
        if tier in existing:
            existing[tier].price_fen = price
        else:
            product.member_prices.append(MemberPrice(tier_code=tier, price_fen=price))
    for tier, row in existing.items():
        if tier not in data.member_prices:
            product.member_prices.remove(row)
    session.flush()
    after = _product_snapshot(product)
    if before != after:
        action = "product.create" if before is None else "product.update"
        audit.record(session, actor, action, "product", product.sku, before, after, at=now)
    return product


def get_product(session: Session, sku: str) -> Product:
    product = session.scalar(select(Product).where(Product.sku == sku).options(*PRODUCT_LOADS))
    if product is None:
        raise NotFound("product_not_found", f"No product with SKU {sku}.")
    return product


def products_by_sku(session: Session, skus: list[str]) -> dict[str, Product]:
    if not skus:
        return {}
    rows = session.scalars(
        select(Product).where(Product.sku.in_(sorted(set(skus)))).options(*PRODUCT_LOADS)
    )
    return {p.sku: p for p in rows}


def list_products(
    session: Session,
    *,
    category: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Product], int]:
    conds: list[Any] = []
    if category:
        conds.append(Product.category_id.in_(select(Category.id).where(Category.code == category)))
    if q:
        conds.append(
            Product.name.contains(q, autoescape=True) | Product.sku.startswith(q, autoescape=True)
        )
    total = session.scalar(select(func.count()).select_from(Product).where(*conds)) or 0
    rows = session.scalars(
        select(Product)
        .where(*conds)
        .options(*PRODUCT_LOADS)
        .order_by(Product.sku)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def product_out(p: Product) -> ProductOut:
    return ProductOut(
        sku=p.sku,
        name=p.name,
        category_code=p.category.code,
        price_fen=p.price_fen,
        member_prices={m.tier_code: m.price_fen for m in p.member_prices},
        is_active=p.is_active,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )
