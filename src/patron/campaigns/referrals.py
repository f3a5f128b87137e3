"""Referral (SPEC A5) with abuse limits (X6).

A member who registers with a referrer (``members.referrer_member_id``, set from the
referrer's code at sign-up) becomes a referral when ``run_referrals`` next looks: refused at
once for self-referral (or a referee who referred their own referrer), held for review when
too many referees with the same phone prefix arrived within the burst window. A pending
referral is rewarded — both sides, through the ledger, keyed by the referral — after the
referee's first order that pays at least the minimum (the sign-up alone earns nothing), unless
the referrer has reached the cap, which is counted under the referrer's ledger lock so two
referees qualifying at once cannot pass it. A qualifying order refunded before the reward
refuses it; refunded after, the rewards are clawed back (debt if already spent).

A reward may also carry a coupon for either side (issued through the coupons' service, keyed
by the referral and the side) and growth value for the referrer — with the tier-up option, the
growth it lacks for the next tier, so the ladder's own upgrade lifts it. A clawback takes the
growth back as a refund does (a demotion only where the ladder demotes on refunds) and voids
the coupons still unused; a coupon already redeemed stays redeemed, like points already spent
on a gift.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.campaigns import domain
from patron.campaigns.domain import REFERRAL_SECTION, ReferralSettings
from patron.campaigns.models import Referral, ReferralCode
from patron.coupons import service as coupons
from patron.coupons.models import Coupon
from patron.errors import Conflict, NotFound, PatronError
from patron.kit.crypto import FieldCipher
from patron.ledger import flows, growth
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members import service as members
from patron.members.models import Member
from patron.orders.models import Order
from patron.program import service as program
from patron.tiers import service as tiers
from patron.webhooks import events

SOURCE_TYPE = "referral"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed


def get_settings(session: Session) -> ReferralSettings:
    return program.get_section(session, REFERRAL_SECTION, ReferralSettings)


def put_settings(
    session: Session, actor: Principal, value: ReferralSettings, *, now: datetime
) -> None:
    """Save the referral settings (audited by the settings' service); a coupon reward must
    name an existing template (404 ``coupon_template_not_found``, nothing saved)."""
    for template in (value.referrer_coupon, value.referee_coupon):
        if template is not None:
            coupons.get_template(session, template)
    program.put_section(session, actor, REFERRAL_SECTION, value, now=now)


@dataclass(frozen=True, slots=True)
class Offer:
    """What a referral gives each side, as members are told it (the portal)."""

    enabled: bool
    referrer_points: int
    referee_points: int
    #: the coupons' template names (None: no coupon, or the template is gone)
    referrer_coupon: str | None
    referee_coupon: str | None
    referrer_growth: int
    tier_up: bool


def offer(session: Session) -> Offer:
    s = get_settings(session)
    codes = [c for c in (s.referrer_coupon, s.referee_coupon) if c is not None]
    names = coupons.template_names(session, codes) if codes else {}
    return Offer(
        enabled=s.enabled,
        referrer_points=s.referrer_points,
        referee_points=s.referee_points,
        referrer_coupon=names.get(s.referrer_coupon or ""),
        referee_coupon=names.get(s.referee_coupon or ""),
        referrer_growth=s.referrer_growth,
        tier_up=s.referrer_tier_up,
    )


def code_of(session: Session, member_id: int, *, now: datetime) -> str:
    """The member's referral code, created on first use."""
    existing = session.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member_id))
    if existing:
        return existing
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    session.add(ReferralCode(member_id=member_id, code=code, created_at=now))
    session.flush()
    return code


def referrer_by_code(session: Session, code: str) -> str:
    """The member number behind a referral code (for the sign-up form)."""
    no = session.scalar(
        select(Member.member_no)
        .join(ReferralCode, ReferralCode.member_id == Member.id)
        .where(ReferralCode.code == code.upper())
    )
    if no is None:
        raise NotFound("referral_code_not_found", f"No member has the referral code {code!r}.")
    return no


def _emit(session: Session, r: Referral, ctx: Ctx, extra: dict[str, Any] | None = None) -> None:
    events.emit_many(
        session,
        [
            events.NewEvent(
                "referral.changed",
                {
                    "referral_id": r.id,
                    "status": r.status,
                    "reason": r.reason,
                    "referee_points": r.referee_points,
                    "referrer_points": r.referrer_points,
                    **(extra or {}),
                },
                r.referrer_id,
            )
        ],
        ctx.now,
    )


def _audit(
    session: Session,
    ctx: Ctx,
    r: Referral,
    before: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    # spelled out so the console's audit filter can offer each action
    action = (
        "referral.pending"
        if r.status == "pending"
        else "referral.rewarded"
        if r.status == "rewarded"
        else "referral.held"
        if r.status == "held"
        else "referral.refused"
        if r.status == "refused"
        else "referral.clawed_back"
    )
    audit.record(
        session,
        ctx.actor,
        action,
        "referral",
        str(r.id),
        None if before is None else {"status": before},
        {
            "status": r.status,
            "reason": r.reason,
            "referrer": r.referrer_id,
            "referee": r.referee_id,
            **(extra or {}),
        },
        at=ctx.now,
    )


def discover(session: Session, ctx: Ctx, cipher: FieldCipher) -> int:
    """Create the referral rows of members registered with a referrer since the last run."""
    settings = get_settings(session)
    q = select(Member).where(
        Member.referrer_member_id.is_not(None),
        ~select(Referral.id).where(Referral.referee_id == Member.id).exists(),
    )
    if settings.joined_after is not None:
        q = q.where(Member.created_at >= settings.joined_after)
    new = session.scalars(q.order_by(Member.id).execution_options(populate_existing=True)).all()
    for m in new:
        assert m.referrer_member_id is not None
        prefix = domain.phone_prefix(members.decrypt_phone(m, cipher), settings.prefix_digits)
        mutual = (
            session.scalar(
                select(Member.referrer_member_id).where(Member.id == m.referrer_member_id)
            )
            == m.id
        )
        recent = int(
            session.scalar(
                select(func.count(Referral.id)).where(
                    Referral.phone_prefix == prefix,
                    Referral.created_at >= ctx.now - timedelta(hours=settings.burst_hours),
                )
            )
            or 0
        )
        status, reason = domain.referral_verdict(
            referrer_id=m.referrer_member_id,
            referee_id=m.id,
            mutual=mutual,
            same_prefix_recent=recent,
            settings=settings,
        )
        r = Referral(
            referrer_id=m.referrer_member_id,
            referee_id=m.id,
            status=status,
            reason=reason,
            phone_prefix=prefix,
            referrer_points=0,
            referee_points=0,
            created_at=ctx.now,
            resolved_at=None if status == "pending" else ctx.now,
        )
        session.add(r)
        session.flush()
        _audit(session, ctx, r, None)
        _emit(session, r, ctx)
    return len(new)


def _first_qualifying(session: Session, member_id: int, min_fen: int) -> tuple[int, int] | None:
    row = session.execute(
        select(Order.id, Order.paid_fen - Order.refunded_fen)
        .where(Order.member_id == member_id, Order.paid_fen >= min_fen)
        .order_by(Order.ordered_at, Order.id)
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def qualify(session: Session, ctx: Ctx, referral_id: int) -> str:
    """Reward a pending referral whose referee has a qualifying order (see the module doc)."""
    settings = get_settings(session)
    r = session.get(Referral, referral_id)
    if r is None:
        raise NotFound("referral_not_found", f"No referral {referral_id}.")
    # both ledgers locked in member-id order: the referrer's lock serialises its cap count
    for member_id in sorted({r.referrer_id, r.referee_id}):
        ledger.begin(session, ctx, member_id)
    session.refresh(r)
    if r.status != "pending":
        return r.status
    found = _first_qualifying(session, r.referee_id, settings.min_order_fen)
    if found is not None and found[1] < settings.min_order_fen:
        r.status, r.reason, r.order_id, r.resolved_at = "refused", "refunded", found[0], ctx.now
        session.flush()
        _audit(session, ctx, r, "pending")
        _emit(session, r, ctx)
        return r.status
    rewarded = int(
        session.scalar(
            select(func.count(Referral.id)).where(
                Referral.referrer_id == r.referrer_id, Referral.status == "rewarded"
            )
        )
        or 0
    )
    status, reason = domain.qualify_verdict(
        rewarded_so_far=rewarded,
        order_net_fen=None if found is None else found[1],
        settings=settings,
    )
    if status is None:
        return r.status
    r.status, r.reason, r.resolved_at = status, reason, ctx.now
    r.order_id = found[0] if found else None
    extra = _reward(session, ctx, r, settings) if status == "rewarded" else None
    session.flush()
    _audit(session, ctx, r, "pending", extra)
    _emit(session, r, ctx, extra)
    return r.status


def _side_key(r: Referral, side: str) -> str:
    return f"{r.id}:{side}"


def _reward(session: Session, ctx: Ctx, r: Referral, settings: ReferralSettings) -> dict[str, Any]:
    """Both sides' points, the referrer's growth (tier-up option) and each side's coupon; what
    was given beyond the points, for the audit record and the event. Caller holds both locks."""
    given_growth, tier = _referrer_growth(session, ctx, r.referrer_id, settings)
    for side, member_id, points in (
        ("referrer", r.referrer_id, settings.referrer_points),
        ("referee", r.referee_id, settings.referee_points),
    ):
        side_growth = given_growth if side == "referrer" else 0
        changed: str | None = None
        if points:
            changed = flows.earn(
                session,
                ctx,
                member_id,
                points=points,
                growth_value=side_growth,
                source_type=SOURCE_TYPE,
                source_id=_side_key(r, side),
                reason=f"referral reward ({side})",
                pending_days=0,
            ).tier_changed_to
        elif side_growth:
            growth.earn(
                session,
                ctx,
                member_id,
                side_growth,
                source_type=SOURCE_TYPE,
                source_id=_side_key(r, side),
                reason=f"referral reward ({side})",
            )
            changed = tiers.on_growth_change(session, ctx, member_id)
        if side == "referrer" and changed:
            tier = changed
    r.referrer_points, r.referee_points = settings.referrer_points, settings.referee_points
    issued, refused = _give_coupons(session, ctx, r, settings)
    extra: dict[str, Any] = {}
    if given_growth:
        extra["referrer_growth"] = given_growth
        extra["referrer_tier"] = tier
    if issued:
        extra["coupons"] = issued
    if refused:
        extra["coupons_refused"] = refused
    return extra


def _referrer_growth(
    session: Session, ctx: Ctx, member_id: int, settings: ReferralSettings
) -> tuple[int, str | None]:
    """The growth the referrer's reward gives, and the referrer's tier before it (None when
    the reward gives no growth: the tier is not read)."""
    if not settings.referrer_growth and not settings.referrer_tier_up:
        return 0, None
    next_threshold: int | None = None
    state = tiers.state(session, ctx, member_id)
    if settings.referrer_tier_up:
        ladder = tiers.get_ladder(session)
        above = ladder.tiers[ladder.index(state.code) + 1 :]
        next_threshold = above[0].threshold if above else None
    amount = domain.referrer_growth(
        settings, window_growth=state.window_growth, next_threshold=next_threshold
    )
    return amount, state.code


def _give_coupons(
    session: Session, ctx: Ctx, r: Referral, settings: ReferralSettings
) -> tuple[dict[str, str], dict[str, str]]:
    """Each side's coupon through the coupons' issue service, keyed by the referral and the
    side, so a rerun issues nothing twice. A coupon that cannot be issued (sold out, paused,
    the member's tier, the per-member limit) leaves the points given and is reported."""
    issued: dict[str, str] = {}
    refused: dict[str, str] = {}
    for side, member_id in (("referrer", r.referrer_id), ("referee", r.referee_id)):
        template = settings.coupon_of(side)
        if template is None:
            continue
        try:
            # the service refuses a missing or paused template before it writes anything
            report = coupons.issue_many(
                session,
                ctx,
                template,
                [member_id],
                reason="referral",
                key=f"referral:{_side_key(r, side)}",
            )
        except PatronError as exc:
            refused[side] = exc.code
            continue
        if report.issued:
            issued[side] = report.issued[0].code
        elif member_id in report.refused:
            refused[side] = report.refused[member_id]
    return issued, refused


def claw_back_refunded(session: Session, ctx: Ctx, referral_id: int) -> bool:
    """Take back both rewards of a referral whose qualifying order was refunded below the
    minimum (points already spent become debt, repaid from future earnings), the referrer's
    growth, and the coupons not yet used."""
    settings = get_settings(session)
    r = session.get(Referral, referral_id)
    if r is None or r.status != "rewarded" or r.order_id is None:
        return False
    net = session.scalar(select(Order.paid_fen - Order.refunded_fen).where(Order.id == r.order_id))
    if net is None or net >= settings.min_order_fen:
        return False
    for member_id in sorted({r.referrer_id, r.referee_id}):
        ledger.begin(session, ctx, member_id)
    session.refresh(r)
    if r.status != "rewarded":
        return False
    refund_id = f"order-{r.order_id}"
    for side, member_id, points in (
        ("referrer", r.referrer_id, r.referrer_points),
        ("referee", r.referee_id, r.referee_points),
    ):
        if points:
            ledger.clawback_points(
                session,
                ctx,
                member_id,
                points,
                source_type=SOURCE_TYPE,
                source_id=_side_key(r, side),
                refund_id=refund_id,
            )
    extra = _take_back_extras(session, ctx, r, refund_id)
    r.status, r.reason, r.resolved_at = "clawed_back", "refunded", ctx.now
    session.flush()
    _audit(session, ctx, r, "rewarded", extra)
    _emit(session, r, ctx, extra)
    return True


def _take_back_extras(session: Session, ctx: Ctx, r: Referral, refund_id: str) -> dict[str, Any]:
    """The referrer's growth (dated like its earning, as a refund's) and the unused coupons."""
    extra: dict[str, Any] = {}
    earned, effective_at = growth.earned_by_source(
        session, r.referrer_id, SOURCE_TYPE, _side_key(r, "referrer")
    )
    if earned:
        taken = growth.clawback(
            session,
            ctx,
            r.referrer_id,
            earned,
            source_type=SOURCE_TYPE,
            source_id=_side_key(r, "referrer"),
            refund_id=refund_id,
            effective_at=effective_at,
        )
        if taken:
            tiers.on_growth_change(session, ctx, r.referrer_id, refund=True)
            extra["referrer_growth_clawed"] = taken
    voided: list[str] = []
    kept: list[str] = []
    for code, status in session.execute(
        select(Coupon.code, Coupon.status)
        .where(
            Coupon.member_id.in_((r.referrer_id, r.referee_id)),
            Coupon.issue_key.in_(
                [f"referral:{_side_key(r, side)}" for side in ("referrer", "referee")]
            ),
        )
        .order_by(Coupon.id)
    ):
        if status != "issued":
            kept.append(code)
            continue
        try:  # a checkout may redeem it meanwhile: the guarded void then writes nothing
            coupons.void(session, ctx, code, f"referral {r.id} clawed back ({refund_id})")
        except Conflict:
            kept.append(code)
        else:
            voided.append(code)
    if voided:
        extra["coupons_voided"] = voided
    if kept:
        extra["coupons_kept"] = kept
    return extra


def decide(session: Session, ctx: Ctx, referral_id: int, *, approve: bool) -> Referral:
    """A reviewer's decision on a held referral: approve (it waits for its qualifying order
    like any other) or refuse."""
    r = session.get(Referral, referral_id)
    if r is None:
        raise NotFound("referral_not_found", f"No referral {referral_id}.")
    if r.status != "held":
        raise Conflict("referral_not_held", f"Referral {referral_id} is {r.status}, not held.")
    r.status = "pending" if approve else "refused"
    r.resolved_at = None if approve else ctx.now
    if not approve:
        r.reason = "refused_on_review"
    session.flush()
    _audit(session, ctx, r, "held")
    _emit(session, r, ctx)
    return r


def run_referrals(session: Session, ctx: Ctx, cipher: FieldCipher) -> dict[str, int]:
    """The job: discover new referrals, reward those that qualify, claw back refunded ones."""
    if not get_settings(session).enabled:
        return {"discovered": 0, "rewarded": 0, "clawed_back": 0}
    found = discover(session, ctx, cipher)
    rewarded = 0
    for rid in list(session.scalars(select(Referral.id).where(Referral.status == "pending"))):
        rewarded += qualify(session, ctx, rid) == "rewarded"
    clawed = 0
    for rid in list(session.scalars(select(Referral.id).where(Referral.status == "rewarded"))):
        clawed += claw_back_refunded(session, ctx, rid)
    return {"discovered": found, "rewarded": rewarded, "clawed_back": clawed}


def listing(session: Session, status: str) -> list[Referral]:
    return list(
        session.scalars(
            select(Referral).where(Referral.status == status).order_by(Referral.id).limit(500)
        )
    )


def review_queue(session: Session) -> list[tuple[Referral, str, str]]:
    """Held referrals with the referrer's and the referee's member numbers (the console)."""
    referrer = Member.__table__.alias("referrer")
    referee = Member.__table__.alias("referee")
    rows = session.execute(
        select(Referral, referrer.c.member_no, referee.c.member_no)
        .join(referrer, referrer.c.id == Referral.referrer_id)
        .join(referee, referee.c.id == Referral.referee_id)
        .where(Referral.status == "held")
        .order_by(Referral.id)
        .limit(500)
    ).all()
    return [(r, a, b) for r, a, b in rows]
