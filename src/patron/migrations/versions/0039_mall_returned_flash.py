"""Mall: a flash-sale unit that was returned no longer counts as granted.

Earlier versions gave a returned flash unit's points back but kept it in the sale's
``granted``; the sale now counts only its units neither cancelled nor returned (``patron
check`` holds it to that), so sales with returned units are corrected once here.

Revision ID: 0039_mall_returned_flash
Revises: 0038_journeys_more
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0039_mall_returned_flash"
down_revision = "0038_journeys_more"
branch_labels = None
depends_on = None

RETURNED = (
    "(SELECT COALESCE(SUM(r.quantity), 0) FROM mall_redemptions r "
    "WHERE r.flash_sale_id = mall_flash_sales.id AND r.status = 'returned')"
)


def upgrade() -> None:
    op.execute(
        f"UPDATE mall_flash_sales SET granted = CASE WHEN granted > {RETURNED} "
        f"THEN granted - {RETURNED} ELSE 0 END "
        "WHERE EXISTS (SELECT 1 FROM mall_redemptions r "
        "WHERE r.flash_sale_id = mall_flash_sales.id AND r.status = 'returned')"
    )


def downgrade() -> None:
    # the earlier code counted returned units as granted
    op.execute(
        f"UPDATE mall_flash_sales SET granted = CASE WHEN granted + {RETURNED} < quantity "
        f"THEN granted + {RETURNED} ELSE quantity END "
        "WHERE EXISTS (SELECT 1 FROM mall_redemptions r "
        "WHERE r.flash_sale_id = mall_flash_sales.id AND r.status = 'returned')"
    )
