"""The erasure workflow: an operator completes a member's request before its deadline, or
rejects it with a note. Completing erases the member's personal data everywhere Patron holds
it and keeps the ledger, orders and redemptions under the member number, a random pseudonym,
so every figure stays true. Flushes, never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.campaigns.models import Referral
from patron.errors import Conflict, Invalid, NotFound
from patron.kit.crypto import FieldCipher
from patron.members import service as members
from patron.members.models import Member, MemberConsent, MemberTag
from patron.otp.models import OtpCode
from patron.privacy import domain
from patron.privacy.models import ErasureRequest
from patron.program import service as program
from patron.risk.models import MemberFlag
from patron.service.models import Survey, Ticket, TicketEvent
from patron.webhooks import events


def settings(session: Session) -> domain.PrivacySettings:
    return program.get_section(session, domain.SECTION, domain.PrivacySettings)


def _open_request(session: Session, request_id: int) -> ErasureRequest:
    row = session.get(ErasureRequest, request_id, with_for_update=True)
    if row is None:
        raise NotFound("erasure_request_not_found", f"No erasure request {request_id}.")
    if row.status != "open":
        raise Conflict("erasure_request_decided", "This request is already done or rejected.")
    return row


def reject(
    session: Session, actor: Principal, request_id: int, *, note: str, now: datetime
) -> ErasureRequest:
    """Refuse with a reason the member is given (e.g. an open dispute or a legal hold)."""
    if not note.strip():
        raise Invalid("erasure_note_required", "Say why the request is rejected.")
    row = _open_request(session, request_id)
    row.status = "rejected"
    row.note = note.strip()[:500]
    row.processed_at, row.processed_by = now, actor.label[:120]
    session.flush()
    audit.record(
        session,
        actor,
        "privacy.erasure_reject",
        "erasure_request",
        str(row.id),
        {"status": "open"},
        {"status": "rejected", "note": row.note},
        at=now,
    )
    member_no = session.scalar(select(Member.member_no).where(Member.id == row.member_id))
    events.emit(
        session,
        "privacy.erasure_rejected",
        {"member_no": member_no, "request_id": row.id, "note": row.note},
        now,
        member_id=row.member_id,
    )
    return row


def complete(
    session: Session,
    actor: Principal,
    cipher: FieldCipher,
    request_id: int,
    *,
    note: str,
    now: datetime,
) -> ErasureRequest:
    row = _open_request(session, request_id)
    member = session.get(Member, row.member_id, with_for_update=True)
    assert member is not None  # a foreign key
    erase_member(session, cipher, member, now)
    row.status = "done"
    row.reason = ""  # the member's own words may name them
    row.note = note.strip()[:500] or None
    row.processed_at, row.processed_by = now, actor.label[:120]
    session.flush()
    audit.record(
        session,
        actor,
        "privacy.erasure_complete",
        "erasure_request",
        str(row.id),
        {"status": "open"},
        {"status": "done", "member_no": member.member_no},
        at=now,
    )
    # The member is told through the messaging integration: the event carries no personal data
    events.emit(
        session,
        "privacy.erasure_completed",
        {"member_no": member.member_no, "request_id": row.id},
        now,
        member_id=member.id,
    )
    return row


def erase_member(session: Session, cipher: FieldCipher, member: Member, now: datetime) -> None:
    """Erase every personal field of the member, in every table that holds one."""
    mid = member.id
    old_index = member.phone_index  # the phone's sign-in codes are found by it
    member.phone_enc = cipher.encrypt("", members.PHONE_CTX)
    member.phone_index = cipher.blind_index(f"erased:{member.member_no}", members.PHONE_CTX)
    member.email_enc = member.email_index = None
    member.name = member.birthday = member.gender = None
    member.city = member.region = member.preferred_channel = None
    member.status = "erased"
    member.updated_at = now
    member.sessions_valid_after = now  # signs the member out everywhere
    session.execute(
        update(MemberConsent)
        .where(MemberConsent.member_id == mid)
        .values(granted=False, updated_at=now, source="erasure")
    )
    session.execute(delete(MemberTag).where(MemberTag.member_id == mid))
    session.execute(delete(MemberFlag).where(MemberFlag.member_id == mid))
    session.execute(delete(OtpCode).where(OtpCode.phone_index == old_index))
    session.execute(
        update(Referral)
        .where(or_(Referral.referrer_id == mid, Referral.referee_id == mid))
        .values(phone_prefix="")
    )
    tickets = select(Ticket.id).where(Ticket.member_id == mid)
    session.execute(
        update(Ticket)
        .where(Ticket.member_id == mid)
        .values(subject=domain.REDACTED, body=domain.REDACTED, resolution=None)
    )
    session.execute(
        update(TicketEvent).where(TicketEvent.ticket_id.in_(tickets)).values(body="", data={})
    )
    session.execute(update(Survey).where(Survey.member_id == mid).values(comment=""))
    _redact_audit(session, member)
    session.flush()


def _redact_audit(session: Session, member: Member) -> None:
    """Audit records about the member keep who did what and when; their personal values are
    replaced. The audit log's trigger allows exactly this change (a ``redacted`` stamp)."""
    rows = session.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_type == "member",
            AuditRecord.entity_id.in_((member.member_no, str(member.id))),
        )
    )
    for r in rows:
        before, after = domain.redact(r.before), domain.redact(r.after)
        if before == r.before and after == r.after:
            continue
        session.execute(
            update(AuditRecord)
            .where(AuditRecord.id == r.id)
            .values(before=before, after={**(after or {}), "redacted": True})
            .execution_options(synchronize_session=False)
        )
