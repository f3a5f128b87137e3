"""The one-off profile-completion bonus (rule ``profile_completion`` of the earning rules).

The pure decision is ``rules.domain.evaluate_profile_completion``; this applies it: the rule's
budget and the daily cap count as for orders, and the ledger's natural key
(``profile:completion:<member id>``) makes the bonus once per member whatever happens.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.kit.crypto import FieldCipher
from patron.kit.timeutil import business_date
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members import domain
from patron.members.models import Member
from patron.members.service import decrypt_email
from patron.orders.models import Order, RuleBudgetUsage
from patron.orders.service import earning_rules
from patron.rules.domain import evaluate_profile_completion

SOURCE_TYPE = "profile"


def _source_id(member_id: int) -> str:
    return f"completion:{member_id}"


def is_complete(member: Member, cipher: FieldCipher) -> bool:
    return domain.profile_complete(
        member.name, decrypt_email(member, cipher), member.birthday, member.gender, member.city
    )


def already_awarded(session: Session, member_id: int) -> bool:
    return ledger.earned_by_source(session, member_id, SOURCE_TYPE, _source_id(member_id)) > 0


def award_if_complete(session: Session, ctx: Ctx, cipher: FieldCipher, member: Member) -> int:
    """Points awarded now (0 when the profile is incomplete, the bonus was given before, the
    rule is off, or its budget or the daily cap leaves nothing)."""
    rules = earning_rules(session)
    complete = is_complete(member, cipher)
    if not complete or not rules.profile_completion.enabled:
        return 0
    ledger.begin(session, ctx, member.id)  # serialises with any other earning of this member
    if already_awarded(session, member.id):
        return 0
    rule_id = rules.profile_completion.id
    budgeted = rule_id in rules.budgeted_rules()
    usage = None
    if budgeted:
        usage = session.get(RuleBudgetUsage, rule_id, with_for_update=True)
        if usage is None:
            usage = RuleBudgetUsage(rule_id=rule_id, points_used=0, updated_at=ctx.now)
            session.add(usage)
            session.flush()
    today = business_date(ctx.now, ctx.tz)
    earned_today = session.scalar(
        select(func.coalesce(func.sum(Order.points_earned), 0)).where(
            Order.member_id == member.id, Order.business_date == today
        )
    )
    bonus = evaluate_profile_completion(
        rules,
        profile_complete=complete,
        already_awarded=False,
        budget_used={rule_id: usage.points_used} if usage is not None else {},
        points_earned_today=int(earned_today or 0),
    )
    if bonus is None or bonus.points <= 0:
        return 0
    flows.earn(
        session,
        ctx,
        member.id,
        points=bonus.points,
        source_type=SOURCE_TYPE,
        source_id=_source_id(member.id),
        reason=f"profile completed ({bonus.note})"[:200],
        pending_days=0,
    )
    if usage is not None:
        usage.points_used += bonus.points
        usage.updated_at = ctx.now
        session.flush()
    return bonus.points
