"""Identifiers: the one grammar for ids callers send, and member card numbers (Luhn).

Every id an integrator sends in a body (order and return ``external_id``, ``source``, SKUs, store
and category codes) is also a path segment somewhere (``GET /orders/{source}/{external_id}``,
``/products/{sku}``), so body and path use the same pattern: an id that is accepted can always
be fetched. Hence no ``/`` (it would split the path) and no leading ``.`` (``.`` and ``..`` are
dot segments that clients and proxies collapse before the request arrives).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Final

from fastapi import Path
from pydantic import StringConstraints

#: where an order comes from (``pos``, ``shop``, ``checkout``)
SOURCE_PATTERN: Final = r"^[a-z0-9_-]{1,32}$"
#: an order's or a return's id in the caller's system: letters, digits and ``_ . : -``
EXTERNAL_ID_PATTERN: Final = r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$"
#: a product's SKU: letters, digits and ``_ . -``
SKU_PATTERN: Final = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"
#: store and category codes
CODE_PATTERN: Final = r"^[A-Za-z0-9_-]{1,32}$"
MEMBER_NO_PATTERN: Final = r"^[0-9]{10}$"

Source = Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]

SourcePath = Annotated[str, Path(pattern=SOURCE_PATTERN)]
ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN)]
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_member_no() -> str:
    """Ten digits, first one 1-9, last one a Luhn check digit (typos are caught at the till)."""
    body = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(8))
    return body + luhn_check_digit(body)


def format_member_no(member_no: str) -> str:
    """``1234567890`` → ``1234 5678 90`` for cards and receipts."""
    return " ".join(member_no[i : i + 4] for i in range(0, len(member_no), 4))
