"""Actions on a selection of members from the console's list: tag them, send them a message,
or ask for the same points adjustment for each.

A selection is checked whole before anything is written (unknown, repeated or erased members,
too many) and refused with the members named, so a batch is done for everyone or for no one.
Each batch is audited once under its own id (``member_batch``) besides the per-member records
the underlying services write.

Messages: a batch message is queued in messaging (``patron.messaging``), one message per
member from a template or from a text written for the occasion, under the batch's id as its
source. Messaging sends it as it sends every message: on the member's preferred channel they
agreed to (or the fallbacks), outside quiet hours, within the frequency caps, with retries and
delivery tracking; a member without consent is suppressed there and counted in its report.

Points: a batch adjustment creates one approval request per member (not one request for the
batch), always waiting for a second approver whatever the amount, so that each member's
balance and overdraw check is seen and decided on its own in the approval queue.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Invalid
from patron.ledger import flows, queries
from patron.ledger.models import PointsAdjustment
from patron.ledger.service import Ctx
from patron.members import domain
from patron.members import service as members
from patron.members.models import Member, MemberTag, Tag
from patron.messaging import service as messaging

#: the most members one batch may hold (five pages of the list)
MAX_BATCH: Final = 100
#: the source of a batch's messages in the messaging queue and its report
SOURCE_KIND: Final = "batch"


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    members: int
    #: members the action did not apply to (already tagged, no consent)
    skipped: int = 0
    adjustments: tuple[int, ...] = ()


def new_batch_id() -> str:
    return secrets.token_hex(6)


def selection(session: Session, member_nos: list[str]) -> list[Member]:
    """The selected members, in the order given; the whole selection is refused when a number
    is unknown, repeated, erased, or when there are none or too many."""
    numbers = [n.strip() for n in member_nos if n.strip()]
    if not numbers:
        raise Invalid("batch_empty", "Select at least one member in the list.")
    if len(numbers) > MAX_BATCH:
        raise Invalid(
            "batch_too_large",
            f"Select at most {MAX_BATCH} members at a time; {len(numbers)} were selected.",
            details={"selected": len(numbers), "max": MAX_BATCH},
        )
    if len(set(numbers)) != len(numbers):
        raise Invalid("batch_duplicate", "A member was selected twice; reload the list.")
    found = {
        m.member_no: m for m in session.scalars(select(Member).where(Member.member_no.in_(numbers)))
    }
    missing = [n for n in numbers if n not in found]
    if missing:
        raise Invalid(
            "batch_unknown_members",
            f"These member numbers do not exist: {', '.join(missing)}.",
            details={"members": missing},
        )
    erased = [n for n in numbers if found[n].status == "erased"]
    if erased:
        raise Invalid(
            "batch_erased_members",
            f"These members' data was erased and they take no part: {', '.join(erased)}.",
            details={"members": erased},
        )
    return [found[n] for n in numbers]


def tag(
    session: Session, actor: Principal, member_nos: list[str], name: str, *, now: datetime
) -> BatchResult:
    chosen = selection(session, member_nos)
    tag_name = domain.normalize_tag(name)
    skipped = int(
        session.scalar(
            select(func.count())
            .select_from(MemberTag)
            .join(Tag, Tag.id == MemberTag.tag_id)
            .where(Tag.name == tag_name, MemberTag.member_id.in_([m.id for m in chosen]))
        )
        or 0
    )
    for m in chosen:
        members.add_tag(session, actor, m.member_no, tag_name, now=now)
    batch_id = new_batch_id()
    audit.record(
        session,
        actor,
        "member.batch_tag",
        "member_batch",
        batch_id,
        None,
        {"tag": tag_name, "members": len(chosen), "already_tagged": skipped},
        at=now,
    )
    return BatchResult(batch_id, len(chosen), skipped)


def message(
    session: Session,
    actor: Principal,
    member_nos: list[str],
    *,
    template: str | None,
    text: str,
    now: datetime,
    locale: str = "zh-CN",
) -> BatchResult:
    """Queue one message per selected member through messaging: from a template, or a text
    written for the occasion. Messaging decides each one when it sends (consent, channel,
    quiet hours, caps); the batch id is the messages' source, so the delivery report counts
    them. ``members`` is how many were queued."""
    chosen = selection(session, member_nos)
    batch_id = new_batch_id()
    drafts = [messaging.Draft(m.id, f"batch:{batch_id}:{m.id}") for m in chosen]
    body = None if template else messaging.check_free_text(text)
    queued = (
        messaging.enqueue(
            session, template, drafts,
            source_kind=SOURCE_KIND, source_code=batch_id, now=now, locale=locale,
        )
        if template
        else messaging.enqueue_text(
            session, body or "", drafts,
            source_kind=SOURCE_KIND, source_code=batch_id, now=now, locale=locale,
        )
    )  # fmt: skip
    audit.record(
        session,
        actor,
        "member.batch_message",
        "member_batch",
        batch_id,
        None,
        {"template": template or None, "members": queued, "text": body},
        at=now,
    )
    return BatchResult(batch_id, queued)


def adjust(
    session: Session,
    ctx: Ctx,
    member_nos: list[str],
    *,
    amount: int,
    reason: str,
) -> BatchResult:
    """One waiting adjustment of ``amount`` points per member. A deduction is refused for the
    whole batch, naming the members, when any of them could not pay it now."""
    if amount == 0:
        raise Invalid("invalid_amount", "Enter a number of points other than 0.")
    if not reason.strip():
        raise Invalid("reason_required", "An adjustment needs a reason.")
    chosen = selection(session, member_nos)
    if amount < 0:
        short = [
            m.member_no
            for m in chosen
            if queries.balance(session, m.id, ctx.now).available + amount < 0
        ]
        if short:
            raise Invalid(
                "batch_overdraw",
                f"These members have fewer than {-amount} points: {', '.join(short)}.",
                details={"members": short},
            )
    rows: list[PointsAdjustment] = [
        flows.request_adjustment(
            session, ctx, m.id, ledger="points", amount=amount, reason=reason,
            always_approve=True,
        )
        for m in chosen
    ]  # fmt: skip
    batch_id = new_batch_id()
    audit.record(
        session,
        ctx.actor,
        "member.batch_adjust",
        "member_batch",
        batch_id,
        None,
        {"points": amount, "members": len(chosen), "reason": reason.strip()},
        at=ctx.now,
    )
    return BatchResult(batch_id, len(chosen), 0, tuple(r.id for r in rows))
