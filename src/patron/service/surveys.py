"""Satisfaction and NPS: a survey after a resolved ticket, scheduled NPS surveys, and NPS by
tier and by store. Flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid
from patron.members.models import Member, MemberConsent
from patron.messaging import service as messaging
from patron.messaging.models import Message
from patron.service import domain, tickets
from patron.service.models import Survey, Ticket
from patron.webhooks import events

#: the messages of scheduled surveys, in the messaging queue and its report
SOURCE_KIND: Final = "survey"
SURVEY_PATH: Final = "/portal/survey"
#: the text sent when the schedule names no template (members are mostly Chinese speakers)
DEFAULT_TEXT: Final = "{{name}}，您好！您有多大可能把我们推荐给亲友？请花一分钟打分：{url}"


@dataclass(frozen=True, slots=True)
class SurveyRound:
    code: str | None  # the round's source code in messaging; None: no round was due
    queued: int = 0


def last_round(session: Session) -> datetime | None:
    return session.scalar(
        select(func.max(Message.created_at)).where(Message.source_kind == SOURCE_KIND)
    )


def send_round(session: Session, now: datetime, *, base_url: str) -> SurveyRound:
    """Queue a scheduled NPS survey for a random sample of active members who agreed to
    messages on some channel and were not asked within ``member_days``, when a round is due.
    Messaging sends them (channel, quiet hours, caps); a rerun the same day queues nothing
    twice (the dedupe key names the round)."""
    schedule = tickets.settings(session).nps_schedule
    if not domain.nps_round_due(schedule, last_round(session), now):
        return SurveyRound(None)
    asked = select(Message.member_id).where(
        Message.source_kind == SOURCE_KIND,
        Message.created_at > now - timedelta(days=schedule.member_days),
    )
    consenting = select(MemberConsent.member_id).where(
        MemberConsent.member_id == Member.id, MemberConsent.granted.is_(True)
    )
    chosen = list(
        session.scalars(
            select(Member.id)
            .where(Member.status == "active", consenting.exists(), Member.id.not_in(asked))
            .order_by(func.random())
            .limit(schedule.sample)
        )
    )
    code = f"nps-{now:%Y%m%d}"
    drafts = [messaging.Draft(mid, f"survey:{code}:{mid}") for mid in sorted(chosen)]
    if schedule.template:
        queued = messaging.enqueue(
            session, schedule.template, drafts,
            source_kind=SOURCE_KIND, source_code=code, now=now,
        )  # fmt: skip
    else:
        text = DEFAULT_TEXT.replace("{url}", base_url.rstrip("/") + SURVEY_PATH)
        queued = messaging.enqueue_text(
            session, text, drafts, source_kind=SOURCE_KIND, source_code=code, now=now
        )
    return SurveyRound(code, queued)


def invited(session: Session, member_id: int, now: datetime) -> bool:
    """Whether a scheduled survey asked this member within ``member_days`` and they have not
    answered one since."""
    days = tickets.settings(session).nps_schedule.member_days
    asked = session.scalar(
        select(func.max(Message.created_at)).where(
            Message.member_id == member_id,
            Message.source_kind == SOURCE_KIND,
            Message.created_at > now - timedelta(days=days),
        )
    )
    if asked is None:
        return False
    answered = session.scalar(
        select(Survey.id).where(
            Survey.member_id == member_id,
            Survey.kind == "scheduled",
            Survey.answered_at >= asked,
        )
    )
    return answered is None


def pending_for(session: Session, member_id: int) -> list[Ticket]:
    """The member's resolved tickets not rated yet (the portal asks about them)."""
    answered = select(Survey.ticket_id).where(Survey.ticket_id.is_not(None))
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.member_id == member_id,
                Ticket.status == "resolved",
                Ticket.id.not_in(answered),
            )
            .order_by(Ticket.resolved_at.desc())
        )
    )


def answer(
    session: Session,
    actor: Principal,
    member: Member,
    *,
    nps: int,
    satisfaction: int | None,
    comment: str,
    now: datetime,
    ticket: Ticket | None = None,
    store_code: str | None = None,
) -> Survey:
    """Record an answer once: a second answer about the same ticket, or to the same
    scheduled survey, is refused."""
    if not 0 <= nps <= 10:
        raise Invalid("survey_score_invalid", "Choose a score from 0 to 10.")
    if satisfaction is not None and not 1 <= satisfaction <= 5:
        raise Invalid("survey_score_invalid", "Choose a satisfaction from 1 to 5.")
    if ticket is not None:
        if ticket.member_id != member.id or ticket.status != "resolved":
            raise Conflict("survey_not_open", "This ticket is not waiting for your rating.")
        if session.scalar(select(Survey.id).where(Survey.ticket_id == ticket.id)) is not None:
            raise Conflict("survey_answered", "You already rated this ticket. Thank you!")
    elif not invited(session, member.id, now):
        raise Conflict("survey_not_open", "No survey is waiting for your answer. Thank you!")
    row = Survey(
        member_id=member.id,
        ticket_id=ticket.id if ticket else None,
        kind="ticket" if ticket else "scheduled",
        nps=nps,
        satisfaction=satisfaction,
        comment=comment.strip()[:500],
        tier_code=tickets.member_tier(session, member.id),
        store_code=(ticket.store_code if ticket else store_code) or member.registration_store_code,
        answered_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "service.survey_answer",
        "member",
        member.member_no,
        None,
        {"nps": nps, "satisfaction": satisfaction, "ticket": ticket.ticket_no if ticket else None},
        at=now,
    )
    events.emit(
        session,
        "service.survey.answered",
        {
            "member_no": member.member_no,
            "kind": row.kind,
            "nps": nps,
            "satisfaction": satisfaction,
            "ticket_no": ticket.ticket_no if ticket else None,
        },
        now,
        member_id=member.id,
    )
    return row


@dataclass(frozen=True, slots=True)
class NpsRow:
    key: str | None  # the tier code or the store code (None: no store)
    answers: int
    promoters: int
    passives: int
    detractors: int
    satisfaction: float | None

    @property
    def nps(self) -> int:
        return round(100 * (self.promoters - self.detractors) / self.answers)


def nps_report(
    session: Session, by: str, *, since: datetime | None = None, until: datetime | None = None
) -> list[NpsRow]:
    """NPS per tier (``by="tier"``) or per store (``by="store"``) over the answers in range,
    counted in SQL."""
    col = Survey.tier_code if by == "tier" else Survey.store_code
    where = []
    if since is not None:
        where.append(Survey.answered_at >= since)
    if until is not None:
        where.append(Survey.answered_at < until)
    rows = session.execute(
        select(
            col,
            func.count(),
            func.sum(case((Survey.nps >= 9, 1), else_=0)),
            func.sum(case((Survey.nps.between(7, 8), 1), else_=0)),
            func.sum(case((Survey.nps <= 6, 1), else_=0)),
            func.avg(Survey.satisfaction),
        )
        .where(*where)
        .group_by(col)
        .order_by(col)
    )
    return [
        NpsRow(
            key=r[0],
            answers=int(r[1]),
            promoters=int(r[2] or 0),
            passives=int(r[3] or 0),
            detractors=int(r[4] or 0),
            satisfaction=float(r[5]) if r[5] is not None else None,
        )
        for r in rows
    ]


def overall(rows: list[NpsRow]) -> int | None:
    total = sum(r.answers for r in rows)
    if not total:
        return None
    return round(100 * (sum(r.promoters for r in rows) - sum(r.detractors for r in rows)) / total)
