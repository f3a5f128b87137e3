"""Write and read the audit trail. Callers pass personal data already masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, get_args

from sqlalchemy import ColumnElement, String, and_, cast, func, insert, or_, select
from sqlalchemy.orm import Session

from patron.audit.models import AuditRecord
from patron.auth.principal import Principal, PrincipalKind
from patron.kit import keyset
from patron.ledger.models import PointsAdjustment
from patron.members.models import Member
from patron.observability import current_request_id

#: Who acts: ``actor_type`` is the principal's kind.
ACTOR_TYPES: Final[tuple[str, ...]] = get_args(PrincipalKind)
#: Every ``entity_type`` the services record (a test reads each ``record`` call in the code).
#: A member's records are under its number, except ledger flows (points earned, spent, clawed
#: back), which use its row id, and manual adjustments, under the adjustment's id.
ENTITY_TYPES: Final = (
    "member",
    "points_adjustment",
    "staff",
    "api_key",
    "settings",
    "store",
    "category",
    "product",
    "webhook",
    "import",
    "campaign",
    "campaign_action",
    "coupon",
    "coupon_template",
    "event",
    "mall_flash_sale",
    "mall_gift",
    "mall_lottery",
    "mall_redemption",
    "mall_supplier",
    "referral",
    "tag",
    "static_list",
    "service_ticket",
    "kb_article",
    "risk_review",
    "erasure_request",
    "message_template",
    "message",
    "journey",
    "member_batch",
    "ugc_contest",
    "ugc_entry",
)
#: Every ``action`` the services record (checked by the same test).
ACTIONS: Final = (
    "member.register",
    "member.update",
    "member.consent",
    "member.tag_add",
    "member.tag_remove",
    "member.batch_tag",
    "member.batch_message",
    "member.batch_adjust",
    "member.erasure_request",
    "member.import",
    "tier.override",
    "points.earn",
    "points.spend",
    "points.spend_cancel",
    "points.refund_clawback",
    "points.adjust_request",
    "points.adjust_approve",
    "points.adjust_reject",
    "orders.import_batch",
    "staff.create",
    "staff.update",
    "apikey.create",
    "apikey.revoke",
    "settings.update",
    "store.create",
    "store.update",
    "category.create",
    "category.update",
    "product.create",
    "product.update",
    "webhook.create",
    "webhook.deactivate",
    "webhook.resend",
    "campaign.action_create",
    "campaign.budget_reached",
    "campaign.create",
    "campaign.status",
    "campaign.update",
    "coupon.issue",
    "coupon.issue_batch",
    "coupon.void",
    "coupon_template.create",
    "coupon_template.update",
    "event.cancelled",
    "event.close",
    "event.create",
    "event.promoted",
    "event.registered",
    "event.waitlisted",
    "mall.flash_sale_close",
    "mall.flash_sale_create",
    "mall.flash_sale_update",
    "mall.gift_create",
    "mall.gift_image",
    "mall.gift_image_delete",
    "mall.gift_markdown",
    "mall.gift_suppliers",
    "mall.gift_update",
    "mall.lottery_close",
    "mall.lottery_draw",
    "mall.lottery_open",
    "mall.lottery_put",
    "mall.purchase_request",
    "mall.redemption_cancelled",
    "mall.redemption_fulfilled",
    "mall.redemption_received",
    "mall.redemption_returned",
    "mall.redemption_reserved",
    "mall.redemption_shipped",
    "mall.stock_adjustment",
    "mall.stock_receipt",
    "mall.stock_transfer_in",
    "mall.stock_transfer_out",
    "mall.supplier_agreement",
    "mall.supplier_put",
    "mall.supplier_quote",
    "ugc_contest.create",
    "ugc_contest.update",
    "ugc_entry.approve",
    "ugc_entry.reject",
    "ugc_entry.win",
    "referral.clawed_back",
    "referral.held",
    "referral.pending",
    "referral.refused",
    "referral.rewarded",
    "tag_rule.change",
    "tag_rule.create",
    "static_list.import",
    "service.ticket_open",
    "service.ticket_reply",
    "service.ticket_assign",
    "service.ticket_resolve",
    "service.sla_breach",
    "service.article_save",
    "service.survey_answer",
    "risk.review_open",
    "risk.review_decide",
    "risk.step_up_verified",
    "privacy.erasure_complete",
    "privacy.erasure_reject",
    "message_template.save",
    "message.retry",
    "message.send_campaign",
    "journey.create",
    "journey.change",
    "journey.pause",
    "journey.resume",
)


def record(
    session: Session,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    at: datetime,
) -> None:
    """``at`` is the operation's time from the injected clock (never the wall clock)."""
    session.add(
        AuditRecord(
            at=at,
            actor_type=principal.kind,
            actor_id=principal.id,
            actor_label=principal.label[:120],
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=_jsonable(before),
            after=_jsonable(after),
            request_id=current_request_id(),
        )
    )


def record_many(
    session: Session,
    principal: Principal,
    entries: list[tuple[str, str, str, dict[str, Any] | None, datetime]],
) -> None:
    """Audit records (action, entity type, entity id, after, at) with no ``before``, in one
    executemany INSERT: a batch writer's thousands of records without a flush each."""
    if not entries:
        return
    session.execute(insert(AuditRecord), rows(principal, entries))


def rows(
    principal: Principal, entries: list[tuple[str, str, str, dict[str, Any] | None, datetime]]
) -> list[dict[str, Any]]:
    """The audit rows of ``record_many``, for a writer that inserts them in its own statement."""
    request_id = current_request_id()
    return [
        {
            "at": at,
            "actor_type": principal.kind,
            "actor_id": principal.id,
            "actor_label": principal.label[:120],
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "before": None,
            "after": _jsonable(after),
            "request_id": request_id,
        }
        for action, entity_type, entity_id, after, at in entries
    ]


def _jsonable(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, datetime) or hasattr(v, "isoformat"):
            out[k] = v.isoformat()
        else:
            out[k] = v
    return out


def search(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_type: str | None = None,
    actor_id: int | None = None,
    action: str | None = None,
    member_no: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    sort: str = "time",
    descending: bool = True,
    count: bool = True,
    after: keyset.Seek | None = None,
) -> tuple[list[AuditRecord], int]:
    """Records matching every filter given, newest first (or by ``sort``, one of
    ``SEARCH_SORTS``), and how many there are (0 without ``count``: an export reading batch
    after batch does not count the log again for each). ``after`` (sort "time" only, which is
    the id's order: ``time_keyset``) seeks instead of an offset.

    ``member_no`` finds the records about that member whichever key they were written under
    (see ``ENTITY_TYPES``)."""
    conds: list[ColumnElement[bool]] = []
    if entity_type:
        conds.append(AuditRecord.entity_type == entity_type)
    if entity_id:
        conds.append(AuditRecord.entity_id == entity_id)
    if actor_type:
        conds.append(AuditRecord.actor_type == actor_type)
    if actor_id is not None:
        conds.append(AuditRecord.actor_id == actor_id)
    if action:
        conds.append(AuditRecord.action == action)
    if member_no:
        conds.append(_about_member(session, member_no))
    if since:
        conds.append(AuditRecord.at >= since)
    if until:
        conds.append(AuditRecord.at < until)
    total = (
        session.scalar(select(func.count()).select_from(AuditRecord).where(*conds)) or 0
        if count
        else 0
    )
    if after is not None:
        if SEARCH_SORTS.get(sort, ()):
            raise ValueError("a seek walks the time order only")
        conds.append(time_keyset(descending).where(after))
    rows = session.scalars(
        select(AuditRecord)
        .where(*conds)
        .order_by(*_order(sort, descending))
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


#: sortable columns of the audit log: the columns each sorts by, before the record's id, which
#: breaks ties in the same direction so that pages never overlap ("time" is the id alone: the
#: order records were written in, which is also their time order). Each follows one of the
#: log's indexes, so a page costs milliseconds on a million records: "actor" groups each
#: actor's records (by kind, then the actor's id, not the name: sorting by name read the whole
#: log, 0.4-0.5 s a page there), "action" each action's (then by actor and time).
SEARCH_SORTS: Final[dict[str, tuple[Any, ...]]] = {
    "time": (),
    "actor": (AuditRecord.actor_type, AuditRecord.actor_id),
    "action": (
        AuditRecord.action,
        AuditRecord.actor_type,
        AuditRecord.actor_id,
        AuditRecord.at,
    ),
    "entity": (AuditRecord.entity_type, AuditRecord.entity_id),
}


def time_keyset(descending: bool) -> keyset.Keyset:
    """The time order (the record id's) as a walk by seeking, for long exports."""
    return keyset.Keyset(AuditRecord.id, AuditRecord.id, descending)


def _order(sort: str, descending: bool) -> list[Any]:
    columns = (*SEARCH_SORTS.get(sort, ()), AuditRecord.id)
    return [c.desc() if descending else c.asc() for c in columns]


def _about_member(session: Session, member_no: str) -> ColumnElement[bool]:
    by_number = and_(AuditRecord.entity_type == "member", AuditRecord.entity_id == member_no)
    member_id = session.scalar(select(Member.id).where(Member.member_no == member_no))
    if member_id is None:
        return by_number
    adjustments = select(cast(PointsAdjustment.id, String)).where(
        PointsAdjustment.member_id == member_id
    )
    return or_(
        by_number,
        and_(AuditRecord.entity_type == "member", AuditRecord.entity_id == str(member_id)),
        and_(
            AuditRecord.entity_type == "points_adjustment",
            AuditRecord.entity_id.in_(adjustments),
        ),
    )
