"""Catalogue routes: stores, categories, products."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.catalog import service
from patron.catalog.schemas import (
    CategoryIn,
    CategoryOut,
    ProductIn,
    ProductOut,
    ProductPage,
    StoreIn,
    StoreOut,
)
from patron.errors import Invalid
from patron.kit.ids import CodePath, SkuPath
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["catalog"])
Reader = Annotated[Principal, Depends(require(perm.CATALOG_READ))]
Writer = Annotated[Principal, Depends(require(perm.CATALOG_WRITE))]


@router.get("/stores", summary="List stores")
def list_stores(
    principal: Reader,
    session: SessionDep,
    region: Annotated[str | None, Query(max_length=32)] = None,
) -> list[StoreOut]:
    return [service.store_out(s) for s in service.list_stores(session, region)]


@router.put("/stores/{code}", summary="Create or update a store")
def put_store(
    code: CodePath,
    body: StoreIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> StoreOut:
    if body.code != code:
        raise Invalid("code_mismatch", "The store code in the path and the body differ.")
    return service.store_out(service.upsert_store(session, principal, body, now=clock.now()))


@router.get("/categories", summary="List product categories")
def list_categories(principal: Reader, session: SessionDep) -> list[CategoryOut]:
    return service.list_categories(session)


@router.put("/categories/{code}", summary="Create or update a category")
def put_category(
    code: CodePath,
    body: CategoryIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> CategoryOut:
    if body.code != code:
        raise Invalid("code_mismatch", "The category code in the path and the body differ.")
    cat = service.upsert_category(session, principal, body, now=clock.now())
    return CategoryOut(code=cat.code, name=cat.name, parent_code=body.parent_code)


@router.get("/products", summary="List products")
def list_products(
    principal: Reader,
    session: SessionDep,
    category: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ProductPage:
    rows, total = service.list_products(session, category=category, q=q, limit=limit, offset=offset)
    return ProductPage(
        items=[service.product_out(p) for p in rows], total=total, limit=limit, offset=offset
    )


@router.get("/products/{sku}", summary="A product with its member prices")
def get_product(
    sku: SkuPath,
    principal: Reader,
    session: SessionDep,
) -> ProductOut:
    return service.product_out(service.get_product(session, sku))


@router.put("/products/{sku}", summary="Create or update a product and its member prices")
def put_product(
    sku: SkuPath,
    body: ProductIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> ProductOut:
    if body.sku != sku:
        raise Invalid("sku_mismatch", "The SKU in the path and the body differ.")
    return service.product_out(service.upsert_product(session, principal, body, now=clock.now()))
