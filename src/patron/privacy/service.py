"""Everything Patron holds about one member, as JSON and CSV; erasure requests.

The export is of the member's own data for the member, so personal data is decrypted (not
masked): it is theirs. Every query is by the member's id; nothing else is reachable from here.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.checkin.models import CheckIn
from patron.kit import csvsafe
from patron.kit.crypto import FieldCipher
from patron.ledger.models import GrowthPosting, PointsAdjustment, PointsLot, PointsPosting
from patron.members import service as members
from patron.members.models import ConsentEvent, Member, MemberTag, Tag
from patron.orders.models import LINES_AND_PAYMENTS, Order, OrderReturn
from patron.privacy.models import ErasureRequest
from patron.tiers.models import MemberTier, TierChange

SECTIONS = (
    "profile",
    "consents",
    "consent_history",
    "tags",
    "points",
    "points_lots",
    "adjustments",
    "growth",
    "orders",
    "returns",
    "tier",
    "tiers",
    "checkins",
    "erasure_requests",
)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def export(
    session: Session, cipher: FieldCipher, member: Member, *, now: datetime
) -> dict[str, Any]:
    mid = member.id
    profile = {
        "member_no": member.member_no,
        "phone": members.decrypt_phone(member, cipher),
        "email": members.decrypt_email(member, cipher),
        "name": member.name,
        "birthday": member.birthday,
        "gender": member.gender,
        "city": member.city,
        "region": member.region,
        "preferred_channel": member.preferred_channel,
        "member_type": member.member_type,
        "status": member.status,
        "registration_channel": member.registration_channel,
        "registration_store_code": member.registration_store_code,
        "referrer_member_no": _member_no(session, member.referrer_member_id),
        "referrer_staff_id": member.referrer_staff_id,
        "created_at": member.created_at,
        "updated_at": member.updated_at,
    }
    consents = [
        {"channel": c.channel, "granted": c.granted, "updated_at": c.updated_at, "source": c.source}
        for c in members.consents_of(session, member.id)
    ]
    consent_history = [
        {"channel": e.channel, "granted": e.granted, "at": e.at, "source": e.source}
        for e in session.scalars(
            select(ConsentEvent).where(ConsentEvent.member_id == mid).order_by(ConsentEvent.id)
        )
    ]
    points = [
        {
            "id": p.id,
            "kind": p.kind,
            "available": p.available_delta,
            "pending": p.pending_delta,
            "debt": p.debt_delta,
            "reason": p.reason,
            "source": f"{p.source_type}:{p.source_id}" if p.source_type else "",
            "at": p.created_at,
        }
        for p in session.scalars(
            select(PointsPosting).where(PointsPosting.member_id == mid).order_by(PointsPosting.id)
        )
    ]
    tags = [
        {"tag": name, "added_at": at}
        for name, at in session.execute(
            select(Tag.name, MemberTag.created_at)
            .join(MemberTag, MemberTag.tag_id == Tag.id)
            .where(MemberTag.member_id == mid)
            .order_by(Tag.name)
        )
    ]
    lots = [
        {
            "earned_at": lot.earned_at,
            "amount": lot.amount,
            "remaining": lot.remaining,
            "expires_at": lot.expires_at,
            "source": f"{lot.source_type}:{lot.source_id}" if lot.source_type else "",
        }
        for lot in session.scalars(
            select(PointsLot).where(PointsLot.member_id == mid).order_by(PointsLot.id)
        )
    ]
    adjustments = [
        {
            "ledger": a.ledger,
            "amount": a.amount,
            "reason": a.reason,
            "status": a.status,
            "requested_at": a.created_at,
            "decided_at": a.decided_at,
        }
        for a in session.scalars(
            select(PointsAdjustment)
            .where(PointsAdjustment.member_id == mid)
            .order_by(PointsAdjustment.id)
        )
    ]
    growth = [
        {
            "kind": g.kind,
            "amount": g.amount,
            "effective_at": g.effective_at,
            "reason": g.reason,
            "source": f"{g.source_type}:{g.source_id}" if g.source_type else "",
            "at": g.created_at,
        }
        for g in session.scalars(
            select(GrowthPosting).where(GrowthPosting.member_id == mid).order_by(GrowthPosting.id)
        )
    ]
    returns = [
        {
            "order": f"{o.source}:{o.external_id}",
            "return_id": r.external_id,
            "returned_at": r.returned_at,
            "refund_fen": r.refund_fen,
            "points_returned": r.points_returned,
            "points_clawed": r.points_clawed,
            "growth_clawed": r.growth_clawed,
            "lines": "; ".join(f"line {ln.line_no} x{ln.quantity}" for ln in r.lines),
        }
        for r, o in session.execute(
            select(OrderReturn, Order)
            .join(Order, Order.id == OrderReturn.order_id)
            .options(selectinload(OrderReturn.lines), *LINES_AND_PAYMENTS)
            .where(OrderReturn.member_id == mid)
            .order_by(OrderReturn.id)
        )
    ]
    state = session.get(MemberTier, mid)
    tier = (
        {
            "tier": state.tier_code,
            "since": state.since,
            "next_evaluation_at": state.next_evaluation_at,
            "grace_until": state.grace_until,
            "override_until": state.override_until,
            "override_reason": state.override_reason,
        }
        if state is not None
        else {"tier": None}
    )
    orders = [
        {
            "source": o.source,
            "external_id": o.external_id,
            "channel": o.channel,
            "store_code": o.store_code,
            "ordered_at": o.ordered_at,
            "status": o.status,
            "total_fen": o.total_fen,
            "paid_fen": o.paid_fen,
            "points_used": o.points_used,
            "points_earned": o.points_earned,
            "refunded_fen": o.refunded_fen,
            "lines": "; ".join(f"{ln.sku} x{ln.quantity}" for ln in o.lines),
        }
        for o in session.scalars(
            select(Order)
            .options(*LINES_AND_PAYMENTS)
            .where(Order.member_id == mid)
            .order_by(Order.id)
        )
    ]
    tiers = [
        {"from": t.from_code, "to": t.to_code, "kind": t.kind, "reason": t.reason, "at": t.at}
        for t in session.scalars(
            select(TierChange).where(TierChange.member_id == mid).order_by(TierChange.id)
        )
    ]
    checkins = [
        {"date": c.business_date, "streak": c.streak, "points": c.points + c.bonus}
        for c in session.scalars(
            select(CheckIn).where(CheckIn.member_id == mid).order_by(CheckIn.business_date)
        )
    ]
    data: dict[str, Any] = {
        "exported_at": now,
        "profile": profile,
        "consents": consents,
        "consent_history": consent_history,
        "tags": tags,
        "points": points,
        "points_lots": lots,
        "adjustments": adjustments,
        "growth": growth,
        "orders": orders,
        "returns": returns,
        "tier": tier,
        "tiers": tiers,
        "checkins": checkins,
        "erasure_requests": [
            {
                "status": r.status,
                "channel": r.channel,
                "reason": r.reason,
                "requested_at": r.requested_at,
                "processed_at": r.processed_at,
            }
            for r in session.scalars(
                select(ErasureRequest)
                .where(ErasureRequest.member_id == mid)
                .order_by(ErasureRequest.id)
            )
        ],
    }
    out: dict[str, Any] = _jsonable(data)
    return out


def _member_no(session: Session, member_id: int | None) -> str | None:
    if member_id is None:
        return None
    other = session.get(Member, member_id)
    return other.member_no if other is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return _iso(value)


def to_csv_zip(data: dict[str, Any]) -> bytes:
    """One CSV per section in a ZIP (a phone opens each in a spreadsheet app)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for section in SECTIONS:
            rows = data[section]
            if isinstance(rows, dict):
                rows = [{"field": k, "value": v} for k, v in rows.items()]
            text = io.StringIO()
            columns = list(rows[0]) if rows else ["(none)"]
            writer = csv.DictWriter(text, fieldnames=columns)
            writer.writeheader()
            # The member's own text (name, reasons, tags, ids) may start like a formula.
            writer.writerows(csvsafe.record(r) for r in rows)
            # BOM: spreadsheet apps then read the Chinese text as UTF-8
            zf.writestr(f"{section}.csv", "\ufeff" + text.getvalue())
    return buf.getvalue()


def erasure_requests(
    session: Session, *, status: str | None, limit: int, offset: int
) -> tuple[list[ErasureRequest], int]:
    """The erasure queue for operators, oldest open request first (they are due in turn)."""
    where = [ErasureRequest.status == status] if status else []
    total = session.scalar(select(func.count()).select_from(ErasureRequest).where(*where))
    rows = session.scalars(
        select(ErasureRequest)
        .where(*where)
        .order_by(ErasureRequest.requested_at, ErasureRequest.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def open_erasure_request(session: Session, member_id: int) -> ErasureRequest | None:
    return session.scalar(
        select(ErasureRequest).where(
            ErasureRequest.member_id == member_id, ErasureRequest.status == "open"
        )
    )


def request_erasure(
    session: Session, actor: Principal, member: Member, *, reason: str, now: datetime
) -> ErasureRequest:
    """Record the request once (asking again while one is open returns that one)."""
    existing = open_erasure_request(session, member.id)
    if existing is not None:
        return existing
    row = ErasureRequest(
        member_id=member.id, status="open", channel="portal", reason=reason[:500], requested_at=now
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "member.erasure_request",
        "member",
        member.member_no,
        None,
        {"request_id": row.id, "channel": "portal"},
        at=now,
    )
    return row
