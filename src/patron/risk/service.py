"""Risk review of mall redemptions: read the facts (one statement per kind), apply the rules
and the anomaly model, and ask for step-up verification or a manual review above the
thresholds. Flushes, never commits.

``guard_redemption`` is the mall's one call. A held redemption raises ``RiskHold`` before
the mall writes anything; the caller that answers the member (portal page, API route) then
records the review with ``open_review`` and commits that alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Conflict, NotFound, PatronError
from patron.kit.crypto import FieldCipher
from patron.ledger.models import PointsAdjustment
from patron.ledger.service import Ctx
from patron.mall.models import Redemption
from patron.members import service as members
from patron.members.models import Member
from patron.observability import current_request_id
from patron.orders.models import OrderReturn
from patron.program import service as program
from patron.risk import domain, earning, model
from patron.risk.models import MemberFlag, RiskReview
from patron.webhooks import events

PREFIX_RULE = "shared_phone_prefix"
PREFIX_CAP = 50_000  # new members read per run of the prefix job


def settings(session: Session) -> domain.RiskSettings:
    return program.get_section(session, domain.SECTION, domain.RiskSettings)


@dataclass(frozen=True, slots=True)
class Assessment:
    member_id: int
    gift_code: str
    points: int
    store_code: str | None
    facts: domain.Facts
    rules: list[str]
    anomaly: float | None
    score: int
    decision: domain.Decision
    at: datetime = field(compare=False)
    device_id: str | None = None


class RiskHold(PatronError):
    """The redemption waits: for the member's SMS code (403 ``risk_step_up_required``) or an
    operator (409 ``risk_review_required``). ``assessment`` says why."""

    def __init__(self, assessment: Assessment) -> None:
        details = {"score": assessment.score, "rules": assessment.rules}
        if assessment.decision == "step_up":
            super().__init__(
                "risk_step_up_required",
                "Confirm this redemption with the code we send by SMS to the member's phone.",
                status=403,
                details=details,
            )
        else:
            super().__init__(
                "risk_review_required",
                "This redemption waits for a check by our team; the member is told the outcome.",
                status=409,
                details=details,
            )
        self.assessment = assessment


@dataclass(frozen=True, slots=True)
class Read:
    """Everything one assessment reads, from ONE statement of scalar subqueries: the rules'
    facts, the member's last 30 days for the model, and any review of this member and gift."""

    facts: domain.Facts
    behaviour: model.Behaviour
    recent_redemptions: int  # everyone's, last 30 days: whether a model can be trained
    pass_id: int | None
    pending_id: int | None


def read(
    session: Session,
    s: domain.RiskSettings,
    member: Member,
    *,
    gift_code: str,
    points: int,
    store_code: str | None,
    now: datetime,
    device_id: str | None = None,
) -> Read:
    hour = now - timedelta(hours=1)
    month = now - model.WINDOW
    live = Redemption.status != "cancelled"
    mine = Redemption.member_id == member.id

    def count(*where: Any) -> Any:
        return select(func.count()).select_from(Redemption).where(*where).scalar_subquery()

    refund_since = now - timedelta(days=s.refund_days)
    first_redemption = (
        select(func.min(Redemption.created_at))
        .where(mine, Redemption.created_at >= refund_since, live)
        .scalar_subquery()
    )
    refunds = (
        select(func.count())
        .select_from(OrderReturn)
        .where(
            OrderReturn.member_id == member.id,
            OrderReturn.returned_at >= refund_since,
            OrderReturn.returned_at > first_redemption,
        )
        .scalar_subquery()
    )
    applied = (
        PointsAdjustment.ledger == "points",
        PointsAdjustment.status == "applied",
        PointsAdjustment.amount > 0,
        PointsAdjustment.created_at >= now - timedelta(days=s.adjust_days),
    )
    volume = (
        select(
            PointsAdjustment.requested_by_key.label("key"),
            func.sum(PointsAdjustment.amount).label("total"),
        )
        .where(*applied)
        .group_by(PointsAdjustment.requested_by_key)
        .subquery()
    )
    staff_volume = (
        select(func.coalesce(func.max(volume.c.total), 0))
        .where(
            volume.c.key.in_(
                select(PointsAdjustment.requested_by_key).where(
                    PointsAdjustment.member_id == member.id, *applied
                )
            )
        )
        .scalar_subquery()
    )
    prefix = (
        select(MemberFlag.size)
        .where(MemberFlag.member_id == member.id, MemberFlag.rule == PREFIX_RULE)
        .scalar_subquery()
    )
    review = select(RiskReview.id).where(
        RiskReview.member_id == member.id,
        RiskReview.subject == gift_code,
        RiskReview.expires_at > now,
    )
    granted = (
        review.where(RiskReview.status.in_(("verified", "approved")))
        .order_by(RiskReview.id)
        .limit(1)
        .scalar_subquery()
    )
    pending = review.where(RiskReview.status == "pending").limit(1).scalar_subquery()
    points_30 = (
        select(func.coalesce(func.sum(Redemption.points), 0))
        .where(mine, Redemption.created_at >= month, live)
        .scalar_subquery()
    )
    returns_30 = (
        select(func.count())
        .select_from(OrderReturn)
        .where(OrderReturn.member_id == member.id, OrderReturn.returned_at >= month)
        .scalar_subquery()
    )
    adjusted_30 = (
        select(func.coalesce(func.sum(PointsAdjustment.amount), 0))
        .where(
            PointsAdjustment.member_id == member.id,
            PointsAdjustment.ledger == "points",
            PointsAdjustment.status == "applied",
            PointsAdjustment.created_at >= month,
        )
        .scalar_subquery()
    )
    # the devices the member redeemed from in the window, for the model (see ``model``)
    window = (Redemption.created_at >= month, live)
    used = select(Redemption.device_id).where(mine, *window, Redemption.device_id.is_not(None))
    devices = (
        select(
            func.count(func.distinct(Redemption.member_id)).label("members"),
            func.count().label("n"),
        )
        .where(*window, Redemption.device_id.in_(used))
        .group_by(Redemption.device_id)
        .subquery()
    )
    if device_id:
        here = Redemption.device_id == device_id
        others_here: Any = (
            select(func.count(func.distinct(Redemption.member_id)))
            .where(here, *window, Redemption.member_id != member.id)
            .scalar_subquery()
        )
        n_here: Any = count(here, *window)
    else:
        others_here = n_here = literal(-1)  # no device on this request: only the history counts
    row = session.execute(
        select(
            count(mine, Redemption.created_at >= hour, live),
            count(Redemption.store_code == store_code, Redemption.created_at >= hour, live)
            if store_code
            else literal(0),
            refunds,
            staff_volume,
            prefix,
            granted,
            pending,
            count(mine, Redemption.created_at >= month, live),
            points_30,
            returns_30,
            adjusted_30,
            count(Redemption.created_at >= month, live),
            count(Redemption.device_id == device_id, Redemption.created_at >= hour, live)
            if device_id
            else literal(0),
            select(func.coalesce(func.max(devices.c.members), 0)).scalar_subquery(),
            select(func.coalesce(func.max(devices.c.n), 0)).scalar_subquery(),
            others_here,
            n_here,
        )
    ).one()
    age_hours = max((now - member.created_at).total_seconds() / 3600, 0.0)
    return Read(
        facts=domain.Facts(
            points=points,
            member_last_hour=int(row[0] or 0),
            store_last_hour=int(row[1] or 0),
            member_age_hours=age_hours,
            prefix_new_members=int(row[4] or 0),
            refunds_after_redemption=int(row[2] or 0),
            staff_adjust_points=int(row[3] or 0),
            device_last_hour=int(row[12] or 0),
        ),
        behaviour=model.Behaviour(
            redemptions=int(row[7] or 0) + 1,
            points=int(row[8] or 0) + points,
            age_days=age_hours / 24,
            returns=int(row[9] or 0),
            adjusted=int(row[10] or 0),
            # this redemption counts too: one more member and one more use of its device
            device_members=max(int(row[13] or 0), int(row[15]) + 1),
            device_redemptions=max(int(row[14] or 0), int(row[16]) + 1),
        ),
        recent_redemptions=int(row[11] or 0),
        pass_id=int(row[5]) if row[5] is not None else None,
        pending_id=int(row[6]) if row[6] is not None else None,
    )


def assess(
    session: Session,
    member: Member,
    *,
    gift_code: str,
    points: int,
    store_code: str | None,
    now: datetime,
    known: Read | None = None,
    device_id: str | None = None,
) -> Assessment:
    s = settings(session)
    r = known or read(
        session, s, member, gift_code=gift_code, points=points, store_code=store_code, now=now,
        device_id=device_id,
    )  # fmt: skip
    rules = domain.fired(s, r.facts)
    anomaly = None
    if s.model_weight and r.recent_redemptions >= s.model_min_samples:
        trained = model.current(
            session, now, timedelta(minutes=s.model_refresh_minutes), s.model_min_samples
        )
        anomaly = model.anomaly(trained, r.behaviour) if trained is not None else None
    value = domain.score(s, rules, anomaly)
    return Assessment(
        member_id=member.id,
        gift_code=gift_code,
        points=points,
        store_code=store_code,
        facts=r.facts,
        rules=rules,
        anomaly=anomaly,
        score=value,
        decision=domain.decide(s, value),
        at=now,
        device_id=device_id,
    )


def _open(session: Session, member_id: int, gift_code: str, now: datetime) -> RiskReview | None:
    return session.scalar(
        select(RiskReview).where(
            RiskReview.member_id == member_id,
            RiskReview.subject == gift_code,
            RiskReview.status == "pending",
            RiskReview.expires_at > now,
        )
    )


def guard_redemption(
    session: Session,
    ctx: Ctx,
    member: Member,
    *,
    gift_code: str,
    points: int,
    store_code: str | None,
    device_id: str | None = None,
) -> None:
    """The mall's hook, called before a redemption writes anything: returns when it may go
    on; raises ``RiskHold`` when it must wait. A verified or approved review lets the same
    member redeem the same gift once (used up here, in the redemption's transaction). One
    statement when nothing is held (the section comes with the mall's context)."""
    s = settings(session)
    if not s.enabled:
        return
    r = read(
        session, s, member, gift_code=gift_code, points=points, store_code=store_code,
        now=ctx.now, device_id=device_id,
    )  # fmt: skip
    if r.pass_id is not None:
        used = session.execute(
            update(RiskReview)
            .where(RiskReview.id == r.pass_id, RiskReview.status.in_(("verified", "approved")))
            .values(status="used")
            .execution_options(synchronize_session=False)
        )
        if getattr(used, "rowcount", 0) == 1:  # a concurrent redemption did not take it first
            return
    if r.pending_id is not None:  # asking again while one waits is the same hold
        raise RiskHold(_from_review(get(session, r.pending_id)))
    a = assess(
        session,
        member,
        gift_code=gift_code,
        points=points,
        store_code=store_code,
        now=ctx.now,
        known=r,
        device_id=device_id,
    )
    if a.decision != "allow":
        raise RiskHold(a)


def _from_review(r: RiskReview) -> Assessment:
    return Assessment(
        member_id=r.member_id,
        gift_code=r.subject,
        points=r.points,
        store_code=r.store_code,
        facts=domain.Facts(0, 0, 0, 0.0, 0, 0, 0),
        rules=list(r.rules),
        anomaly=None,
        score=r.score,
        decision="step_up" if r.decision == "step_up" else "review",
        at=r.created_at,
        device_id=r.device,
    )


def open_review(session: Session, actor: Principal, hold: RiskHold) -> RiskReview:
    """Record the hold (once: a pending review of the same member and gift is returned)."""
    a = hold.assessment
    existing = _open(session, a.member_id, a.gift_code, a.at)
    if existing is not None:
        return existing
    s = settings(session)
    row = RiskReview(
        member_id=a.member_id,
        action="mall_redemption",
        subject=a.gift_code,
        points=a.points,
        store_code=a.store_code,
        device=a.device_id,
        score=a.score,
        rules=a.rules,
        decision=a.decision,
        status="pending",
        created_at=a.at,
        expires_at=a.at + timedelta(minutes=s.pass_minutes),
    )
    session.add(row)
    session.flush()
    member_no = session.scalar(select(Member.member_no).where(Member.id == a.member_id))
    after = {"score": a.score, "rules": a.rules, "decision": a.decision, "gift": a.gift_code}
    audit.record(
        session, actor, "risk.review_open", "risk_review", str(row.id), None, after, at=a.at
    )
    events.emit(
        session,
        "risk.review.opened",
        {"review_id": row.id, "member_no": member_no, **after},
        a.at,
        member_id=a.member_id,
    )
    return row


def hold_response(session: Session, actor: Principal, hold: RiskHold) -> JSONResponse:
    """The API's answer to a held redemption: the error, with the review it opened (returned
    by the route, so the review is committed while the redemption is not made)."""
    review = open_review(session, actor, hold)
    body = {**hold.to_dict(), "request_id": current_request_id()}
    body["details"] = {**body["details"], "review_id": review.id}
    return JSONResponse({"error": body}, status_code=hold.status)


def get(session: Session, review_id: int, *, lock: bool = False) -> RiskReview:
    stmt = select(RiskReview).where(RiskReview.id == review_id)
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFound("risk_review_not_found", f"No risk review {review_id}.")
    return found


def decide(
    session: Session,
    actor: Principal,
    review_id: int,
    *,
    approve: bool,
    note: str,
    now: datetime,
    ctx: Ctx | None = None,
) -> RiskReview:
    """An operator's decision, once. Approval lets the member redeem the gift within the pass
    time from now; rejecting an earning review takes its points back (``ctx``: the ledger's
    context, needed for that). The decision and its note are audited."""
    r = get(session, review_id, lock=True)
    if r.status != "pending":
        raise Conflict("risk_review_decided", "This review is already decided.")
    clawed: earning.Clawed | None = None
    if r.action == earning.ACTION and not approve:
        if ctx is None:
            raise ValueError("rejecting an earning review needs the ledger context")
        clawed = earning.claw_back(session, ctx, r)
    r.status = "approved" if approve else "rejected"
    r.decided_at = now
    r.decided_by = actor.label[:120]
    r.note = note.strip()[:500] or None
    if approve and r.action != earning.ACTION:
        r.expires_at = now + timedelta(minutes=settings(session).pass_minutes)
    session.flush()
    after: dict[str, Any] = {"status": r.status, "note": r.note}
    if clawed is not None:
        after |= {
            "points_owed": clawed.owed,
            "points_taken": clawed.taken,
            "points_pending_cancelled": clawed.pending_cancelled,
            "adjustment_id": clawed.adjustment_id,
            "adjustment_status": clawed.adjustment_status,
        }
    audit.record(
        session, actor, "risk.review_decide", "risk_review", str(r.id), {"status": "pending"},
        after, at=now,
    )  # fmt: skip
    member_no = session.scalar(select(Member.member_no).where(Member.id == r.member_id))
    events.emit(
        session,
        "risk.review.decided",
        {
            "review_id": r.id,
            "member_no": member_no,
            "status": r.status,
            # as when it was opened: a redemption names its gift, an earning its order/credit
            **({"subject": r.subject} if r.action == earning.ACTION else {"gift": r.subject}),
        },
        now,
        member_id=r.member_id,
    )
    return r


def verified(session: Session, actor: Principal, review: RiskReview, now: datetime) -> None:
    """The member entered the SMS code (checked by the OTP service): the step-up is passed."""
    if review.status != "pending" or review.decision != "step_up":
        raise Conflict("risk_review_decided", "This verification is already done.")
    review.status = "verified"
    review.decided_at = now
    review.decided_by = actor.label[:120]
    session.flush()
    audit.record(
        session,
        actor,
        "risk.step_up_verified",
        "risk_review",
        str(review.id),
        None,
        {"status": "verified"},
        at=now,
    )


def queue(
    session: Session, *, status: str, limit: int, offset: int
) -> tuple[list[RiskReview], int]:
    where = [RiskReview.status == status] if status != "all" else []
    if status == "pending":
        where.append(RiskReview.decision == "review")
    total = session.scalar(select(func.count()).select_from(RiskReview).where(*where)) or 0
    rows = session.scalars(
        select(RiskReview)
        .where(*where)
        .order_by(RiskReview.created_at.desc(), RiskReview.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def flag_phone_prefixes(session: Session, cipher: FieldCipher, now: datetime) -> int:
    """Flag the new members (``prefix_days``) whose phone shares its first ``prefix_digits``
    national digits with at least ``prefix_members`` new members. Phones are read only here,
    decrypted in memory; the flags hold no phone. Replaces the previous run's flags."""
    s = settings(session)
    since = now - timedelta(days=s.prefix_days)
    groups: dict[str, list[int]] = {}
    for mid, blob in session.execute(
        select(Member.id, Member.phone_enc)
        .where(Member.created_at >= since, Member.status == "active")
        .order_by(Member.id)
        .limit(PREFIX_CAP)
    ):
        national = cipher.decrypt(blob, members.PHONE_CTX).removeprefix("+86")
        groups.setdefault(national[: s.prefix_digits], []).append(int(mid))
    session.execute(delete(MemberFlag).where(MemberFlag.rule == PREFIX_RULE))
    rows: list[dict[str, Any]] = [
        {"member_id": mid, "rule": PREFIX_RULE, "size": len(ids), "flagged_at": now}
        for ids in groups.values()
        if len(ids) >= s.prefix_members
        for mid in ids
    ]
    if rows:
        session.execute(insert(MemberFlag), rows)
    return len(rows)
