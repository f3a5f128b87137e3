"""A gift's images in the database: each upload is a ``mall_gift_images`` row whose renditions
are in the image store (``images``); the gift's ``image_key`` names the one its pages show —
the latest upload, or after a delete the latest one left. Flushes, never commits; the store's
objects are written before (``images.save``) and removed by the caller after a delete."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import NotFound
from patron.mall import images
from patron.mall import service as mall
from patron.mall.models import Gift, GiftImage


def of_gift(session: Session, gift: Gift) -> list[GiftImage]:
    """Newest first."""
    return list(
        session.scalars(
            select(GiftImage).where(GiftImage.gift_id == gift.id).order_by(GiftImage.id.desc())
        )
    )


def add(
    session: Session, actor: Principal, gift: Gift, prepared: images.Prepared, now: datetime
) -> GiftImage:
    """Record an uploaded image (stored already) and show it on the gift's pages. The same
    bytes again are the same image (content-addressed key): its row is returned, not doubled."""
    row = session.scalar(
        select(GiftImage).where(GiftImage.gift_id == gift.id, GiftImage.key == prepared.key)
    )
    if row is None:
        row = GiftImage(
            gift_id=gift.id,
            key=prepared.key,
            width=prepared.width,
            height=prepared.height,
            created_by=actor.label[:120],
            created_at=now,
        )
        session.add(row)
    before = gift.image_key
    gift.image_key, gift.updated_at = prepared.key, now
    session.flush()
    audit.record(
        session,
        actor,
        "mall.gift_image",
        "mall_gift",
        gift.code,
        {"image_key": before},
        {"image_key": prepared.key, "image_id": row.id},
        at=now,
    )
    return row


def delete(
    session: Session, actor: Principal, gift_code: str, image_id: int, now: datetime
) -> GiftImage:
    """Remove one image of a gift; when pages showed it they show the latest one left (or
    none). Returns the removed row so the caller can delete its renditions from the store."""
    gift = mall.get_gift(session, gift_code)
    row = session.get(GiftImage, image_id)
    if row is None or row.gift_id != gift.id:
        raise NotFound("image_not_found", f"Gift {gift.code} has no image {image_id}.")
    session.delete(row)
    session.flush()
    before = gift.image_key
    if before == row.key:
        left = session.scalar(
            select(GiftImage.key)
            .where(GiftImage.gift_id == gift.id)
            .order_by(GiftImage.id.desc())
            .limit(1)
        )
        gift.image_key, gift.updated_at = left, now
        session.flush()
    audit.record(
        session,
        actor,
        "mall.gift_image_delete",
        "mall_gift",
        gift.code,
        {"image_key": row.key, "image_id": row.id},
        {"image_key": gift.image_key},
        at=now,
    )
    return row
