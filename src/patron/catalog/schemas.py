from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.kit.ids import Code, Sku

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
# Up to 10 million CNY per unit, in fen.
Fen = Annotated[int, Field(ge=0, le=1_000_000_000, description="amount in fen (1 CNY = 100)")]
StoreKind = Literal["store", "online"]


class StoreIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"code": "SH001", "name": "上海南京西路店", "region": "East China", "city": "上海"}
            ]
        },
    )
    code: Code
    name: Text100
    region: Region
    city: Text100 | None = None
    kind: StoreKind = "store"
    is_active: bool = True


class StoreOut(BaseModel):
    code: str
    name: str
    region: str
    city: str | None
    kind: StoreKind
    is_active: bool
    created_at: datetime
    updated_at: datetime


class CategoryIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"code": "beauty", "name": "美妆 Beauty"}]},
    )
    code: Code
    name: Text100
    parent_code: Code | None = None


class CategoryOut(BaseModel):
    code: str
    name: str
    parent_code: str | None


class ProductIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sku": "BEA-0001",
                    "name": "保湿面霜 50ml",
                    "category_code": "beauty",
                    "price_fen": 19900,
                    "member_prices": {"gold": 17900, "diamond": 16900},
                }
            ]
        },
    )
    sku: Sku
    name: Text200
    category_code: Code
    price_fen: Fen
    member_prices: dict[Code, Fen] = Field(default_factory=dict, max_length=10)
    is_active: bool = True


class ProductOut(BaseModel):
    sku: str
    name: str
    category_code: str
    price_fen: int
    member_prices: dict[str, int]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductOut]
    total: int
    limit: int
    offset: int
