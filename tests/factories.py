"""Shared builders for test data."""

from __future__ import annotations


def order_body(member_no, ext="O-1", **over):
    body = {
        "source": "pos",
        "external_id": ext,
        "member_no": member_no,
        "channel": "store",
        "store_code": "SH001",
        "ordered_at": "2026-03-01T09:30:00+08:00",
        "lines": [
            {"sku": "BEA-1", "quantity": 1, "unit_price_fen": 19900},
            {"sku": "FRE-1", "quantity": 2, "unit_price_fen": 1250, "discount_fen": 500},
        ],
        "payments": [{"method": "wechat", "amount_fen": 21900}],
    }
    body.update(over)
    return body
