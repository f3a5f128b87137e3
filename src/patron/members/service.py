"""Member use cases. Services flush and audit; the caller's unit of work commits."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import delete, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from patron.audit import service as audit
from patron.auth.models import StaffUser
from patron.auth.principal import Principal
from patron.db import one_of
from patron.errors import Conflict, Invalid, NotFound, PatronError
from patron.kit import keyset
from patron.kit.crypto import FieldCipher, mask_email
from patron.kit.ids import format_member_no, luhn_valid, new_member_no
from patron.kit.phone import display_phone, mask_phone, normalize_phone
from patron.kit.timeutil import business_date
from patron.members import domain
from patron.members.models import ConsentEvent, Member, MemberConsent, MemberTag, Tag
from patron.members.schemas import (
    ConsentOut,
    Consents,
    MemberCreate,
    MemberOut,
    MemberSummary,
    MemberUpdate,
    Registration,
)
from patron.tiers.models import MemberTier

PHONE_CTX = "member.phone"
#: what a search for a phone or member number looks like (digits, spaces, + - and brackets)
NUMBER_LIKE = re.compile(r"[+0-9\s()-]+")
EMAIL_CTX = "member.email"


def _phone_index(cipher: FieldCipher, e164: str) -> str:
    return cipher.blind_index(e164, PHONE_CTX)


def _email_index(cipher: FieldCipher, email: str) -> str:
    return cipher.blind_index(domain.normalize_email(email), EMAIL_CTX)


def get_member(session: Session, member_no: str) -> Member:
    # The member's columns only: a view reads consents and tags itself (consents_of,
    # tags_of), so a write that never needs them — an order, a redemption — skips both.
    member = session.scalar(select(Member).where(Member.member_no == member_no))
    if member is None:
        raise NotFound("member_not_found", f"No member with number {member_no}.")
    return member


def member_id(session: Session, member_no: str) -> int:
    """The id of a member by number, without loading the member (404 if unknown)."""
    found = session.scalar(select(Member.id).where(Member.member_no == member_no))
    if found is None:
        raise NotFound("member_not_found", f"No member with number {member_no}.")
    return int(found)


def lock(session: Session, member: Member) -> Member:
    """Re-read ``member`` holding its row until commit (PostgreSQL; SQLite transactions are
    serial already): a read-then-write on the profile, such as "the birthday may be set once",
    cannot interleave with another request's."""
    session.refresh(member, with_for_update=True)
    return member


def consents_of(session: Session, member_id: int) -> list[MemberConsent]:
    """The member's current consent per channel, by channel."""
    return list(
        session.scalars(
            select(MemberConsent)
            .where(MemberConsent.member_id == member_id)
            .order_by(MemberConsent.channel)
        )
    )


def tags_of(session: Session, member_ids: list[int]) -> dict[int, list[Tag]]:
    """The tags of each member, by name, in one query (every id is a key, tagged or not)."""
    out: dict[int, list[Tag]] = {mid: [] for mid in member_ids}
    if not member_ids:
        return out
    rows = session.execute(
        select(MemberTag.member_id, Tag)
        .join(Tag, Tag.id == MemberTag.tag_id)
        .where(one_of(session, MemberTag.member_id, member_ids))
        .order_by(Tag.name)
    )
    for member_id, tag in rows:
        out[member_id].append(tag)
    return out


def by_ids(session: Session, member_ids: list[int]) -> dict[int, Member]:
    """Members by row id in one query (for lists that hold member ids)."""
    if not member_ids:
        return {}
    rows = session.scalars(select(Member).where(Member.id.in_(sorted(member_ids))))
    return {m.id: m for m in rows}


def find_by_phone(session: Session, cipher: FieldCipher, phone: str) -> Member | None:
    e164 = normalize_phone(phone)
    return session.scalar(select(Member).where(Member.phone_index == _phone_index(cipher, e164)))


def find_many(
    session: Session, cipher: FieldCipher, *, phones: set[str], numbers: set[str]
) -> tuple[dict[str, Member], dict[str, Member], dict[str, str]]:
    """Members of an import batch in one query: (by phone as written, by member number,
    phone → why it is not a valid number). Consents and tags are not loaded."""
    by_index: dict[str, str] = {}
    invalid: dict[str, str] = {}
    for phone in phones:
        try:
            by_index[_phone_index(cipher, normalize_phone(phone))] = phone
        except PatronError as exc:
            invalid[phone] = exc.message
    found = session.scalars(
        select(Member)
        .options(lazyload("*"))
        .where(
            one_of(session, Member.phone_index, by_index)
            | one_of(session, Member.member_no, numbers)
        )
    ).all()
    by_phone = {by_index[m.phone_index]: m for m in found if m.phone_index in by_index}
    return by_phone, {m.member_no: m for m in found}, invalid


def _ensure_phone_free(
    session: Session, cipher: FieldCipher, e164: str, exclude_id: int | None = None
) -> str:
    index = _phone_index(cipher, e164)
    existing = session.scalar(select(Member.member_no).where(Member.phone_index == index))
    if existing is not None and (
        exclude_id is None
        or session.scalar(select(Member.id).where(Member.member_no == existing)) != exclude_id
    ):
        raise Conflict(
            "member_exists",
            f"This phone number already belongs to member {existing}.",
            details={"member_no": existing},
        )
    return index


def _new_member_no(session: Session) -> str:
    for _ in range(10):
        candidate = new_member_no()
        if session.scalar(select(Member.id).where(Member.member_no == candidate)) is None:
            return candidate
    raise RuntimeError("could not allocate a member number")  # pragma: no cover


def register(
    session: Session,
    actor: Principal,
    cipher: FieldCipher,
    data: MemberCreate,
    *,
    now: datetime,
    tz: ZoneInfo,
) -> Member:
    e164 = normalize_phone(data.phone)
    domain.validate_birthday(data.birthday, business_date(now, tz))
    if data.channel in domain.STORE_CHANNELS and not data.store_code:
        raise Invalid(
            "store_required",
            f"Registrations from channel {data.channel!r} need the store_code of the store.",
            details={"field": "store_code"},
        )
    if data.referrer_staff_id is not None and data.referrer_member_no is not None:
        raise Invalid(
            "one_referrer_only",
            "Give either referrer_staff_id or referrer_member_no, not both.",
            details={"field": "referrer_member_no"},
        )
    referrer_member_id = None
    if data.referrer_member_no is not None:
        ref = session.scalar(select(Member.id).where(Member.member_no == data.referrer_member_no))
        if ref is None:
            raise Invalid(
                "referrer_not_found",
                f"No member with number {data.referrer_member_no} to credit as referrer.",
                details={"field": "referrer_member_no"},
            )
        referrer_member_id = ref
    if (
        data.referrer_staff_id is not None
        and session.get(StaffUser, data.referrer_staff_id) is None
    ):
        raise Invalid(
            "referrer_not_found",
            f"No staff user with id {data.referrer_staff_id} to credit as referrer.",
            details={"field": "referrer_staff_id"},
        )
    phone_index = _ensure_phone_free(session, cipher, e164)
    member = Member(
        member_no=_new_member_no(session),
        phone_enc=cipher.encrypt(e164, PHONE_CTX),
        phone_index=phone_index,
        email_enc=cipher.encrypt(domain.normalize_email(data.email), EMAIL_CTX)
        if data.email
        else None,
        email_index=_email_index(cipher, data.email) if data.email else None,
        name=data.name,
        birthday=data.birthday,
        gender=data.gender,
        city=data.city,
        region=data.region,
        preferred_channel=data.preferred_channel,
        member_type=data.member_type,
        status="active",
        registration_channel=data.channel,
        registration_store_code=data.store_code,
        referrer_staff_id=data.referrer_staff_id,
        referrer_member_id=referrer_member_id,
        created_at=now,
        updated_at=now,
    )
    session.add(member)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same phone won
        raise Conflict("member_exists", "This phone number already belongs to a member.") from exc
    _apply_consents(session, member, {}, data.consents, now, source=f"register:{data.channel}")
    session.flush()
    session.refresh(member)
    audit.record(
        session,
        actor,
        "member.register",
        "member",
        member.member_no,
        None,
        audit_snapshot(member, cipher),
        at=now,
    )
    return member


def update_profile(
    session: Session,
    actor: Principal,
    cipher: FieldCipher,
    member_no: str,
    data: MemberUpdate,
    *,
    now: datetime,
    tz: ZoneInfo,
) -> Member:
    member = get_member(session, member_no)
    _ensure_active(member)
    before = audit_snapshot(member, cipher)
    changes = data.model_dump(exclude_unset=True)
    reason = changes.pop("reason", None)
    phone_changed = False
    if "birthday" in changes:
        domain.validate_birthday(changes["birthday"], business_date(now, tz))
    if "phone" in changes:
        if changes["phone"] is None:
            raise Invalid(
                "phone_required", "A member must keep a phone number.", details={"field": "phone"}
            )
        e164 = normalize_phone(changes.pop("phone"))
        if e164 != decrypt_phone(member, cipher):  # the same number again changes nothing
            domain.check_phone_change(actor.permissions, reason)
            _set_phone(session, cipher, member, e164, now)
            phone_changed = True
    if "email" in changes:
        email = changes.pop("email")
        current = decrypt_email(member, cipher)
        wanted = domain.normalize_email(email) if email else None
        if wanted != current:  # the same address again changes nothing
            domain.check_email_change(actor.kind, actor.permissions, current is not None)
        member.email_enc = (
            cipher.encrypt(domain.normalize_email(email), EMAIL_CTX) if email else None
        )
        member.email_index = _email_index(cipher, email) if email else None
    if "member_type" in changes and changes["member_type"] is None:
        raise Invalid(
            "member_type_required", "member_type cannot be empty.", details={"field": "member_type"}
        )
    for field, value in changes.items():
        setattr(member, field, value)
    member.updated_at = now
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("member_exists", "This phone number already belongs to a member.") from exc
    after = audit_snapshot(member, cipher)
    if before != after or phone_changed:  # two numbers can share one mask
        if phone_changed:
            after["phone_changed"] = True
        if reason:
            after["reason"] = reason
        audit.record(
            session, actor, "member.update", "member", member.member_no, before, after, at=now
        )
    return member


def _set_phone(
    session: Session, cipher: FieldCipher, member: Member, e164: str, now: datetime
) -> None:
    member.phone_index = _ensure_phone_free(session, cipher, e164, exclude_id=member.id)
    member.phone_enc = cipher.encrypt(e164, PHONE_CTX)
    # Whoever held the old number must not stay signed in to the portal.
    member.sessions_valid_after = now


def change_own_phone(
    session: Session,
    actor: Principal,
    cipher: FieldCipher,
    member: Member,
    e164: str,
    *,
    now: datetime,
) -> Member:
    """The member moves to a new number they proved they hold (the caller checked a one-time
    code sent to it): the proof stands in for members:pii and a reason. Every portal session
    ends, this one too, so the member signs in again with the new number."""
    _ensure_active(member)
    before = audit_snapshot(member, cipher)
    if e164 == decrypt_phone(member, cipher):
        return member
    _set_phone(session, cipher, member, e164, now)
    member.updated_at = now
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("member_exists", "This phone number already belongs to a member.") from exc
    after = {**audit_snapshot(member, cipher), "phone_changed": True, "proof": "sms_code"}
    audit.record(session, actor, "member.update", "member", member.member_no, before, after, at=now)
    return member


def set_consents(
    session: Session,
    actor: Principal,
    member_no: str,
    consents: Consents,
    *,
    now: datetime,
    source: str,
) -> Member:
    member = get_member(session, member_no)
    _ensure_active(member)
    current = {c.channel: c for c in consents_of(session, member.id)}
    before = {channel: c.granted for channel, c in current.items()}
    _apply_consents(session, member, current, consents, now, source=source)
    session.flush()
    after = {c.channel: c.granted for c in consents_of(session, member.id)}
    if before != after:
        audit.record(
            session, actor, "member.consent", "member", member.member_no, before, after, at=now
        )
    return member


def consent_history(
    session: Session, member_id: int, *, limit: int = 20
) -> tuple[list[ConsentEvent], int]:
    """The member's consent changes, newest first (ties by the order they were written), and
    how many there are in all."""
    where = ConsentEvent.member_id == member_id
    total = session.scalar(select(func.count()).select_from(ConsentEvent).where(where)) or 0
    rows = session.scalars(
        select(ConsentEvent)
        .where(where)
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
        .limit(limit)
    )
    return list(rows), total


def _apply_consents(
    session: Session,
    member: Member,
    current: dict[str, MemberConsent],
    consents: Consents,
    now: datetime,
    *,
    source: str,
) -> None:
    """Write the consents given (None: unchanged) over ``current``, the member's rows by
    channel, with an event for each change."""
    for channel in domain.CONTACT_CHANNELS:
        granted = getattr(consents, channel)
        if granted is None:
            continue
        row = current.get(channel)
        if row is not None and row.granted == granted:
            continue
        if row is None:
            session.add(
                MemberConsent(
                    member_id=member.id,
                    channel=channel,
                    granted=granted,
                    updated_at=now,
                    source=source,
                )
            )
        else:
            row.granted = granted
            row.updated_at = now
            row.source = source
        session.add(
            ConsentEvent(
                member_id=member.id, channel=channel, granted=granted, at=now, source=source
            )
        )


def add_tag(
    session: Session, actor: Principal, member_no: str, name: str, *, now: datetime
) -> Member:
    member = get_member(session, member_no)
    tag_name = domain.normalize_tag(name)
    tag = session.scalar(select(Tag).where(Tag.name == tag_name))
    if tag is None:
        tag = Tag(name=tag_name, kind="manual", created_at=now)
        session.add(tag)
        session.flush()
    elif tag.kind != "manual":
        raise Conflict(
            "rule_tag", f"Tag {tag_name!r} is computed by a rule and cannot be set by hand."
        )
    exists = session.get(MemberTag, (member.id, tag.id))
    if exists is None:
        session.add(
            MemberTag(member_id=member.id, tag_id=tag.id, created_at=now, created_by=actor.label)
        )
        session.flush()
        audit.record(
            session,
            actor,
            "member.tag_add",
            "member",
            member.member_no,
            None,
            {"tag": tag_name},
            at=now,
        )
    session.refresh(member)
    return member


def remove_tag(
    session: Session, actor: Principal, member_no: str, name: str, *, now: datetime
) -> Member:
    member = get_member(session, member_no)
    tag = session.scalar(select(Tag).where(Tag.name == " ".join(name.split())))
    if tag is None or session.get(MemberTag, (member.id, tag.id)) is None:
        raise NotFound("tag_not_found", f"Member {member_no} has no tag {name!r}.")
    session.execute(
        delete(MemberTag).where(MemberTag.member_id == member.id, MemberTag.tag_id == tag.id)
    )
    session.flush()
    audit.record(
        session,
        actor,
        "member.tag_remove",
        "member",
        member.member_no,
        {"tag": tag.name},
        None,
        at=now,
    )
    session.refresh(member)
    return member


def list_tags(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(Tag.name, Tag.kind, func.count(MemberTag.member_id))
        .outerjoin(MemberTag, MemberTag.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name, Tag.kind)
        .order_by(Tag.name)
    )
    return [(r[0], r[1], int(r[2])) for r in rows]


def tag_names(session: Session) -> list[str]:
    """Every tag's name, for pickers (no member counts: those scan the member tags)."""
    return list(session.scalars(select(Tag.name).order_by(Tag.name)))


def search(
    session: Session,
    cipher: FieldCipher,
    *,
    q: str | None = None,
    phone: str | None = None,
    member_no: str | None = None,
    name: str | None = None,
    tag: str | None = None,
    member_type: str | None = None,
    status: str | None = None,
    tier: str | None = None,
    base_tier: str | None = None,
    channel: str | None = None,
    store_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
    count_limit: int | None = None,
    sort: str = "joined",
    descending: bool = True,
    after: keyset.Seek | None = None,
) -> tuple[list[Member], int]:
    """Members matching every given filter, newest first (or by ``sort``: one of
    ``SEARCH_SORTS``). ``tier`` needs ``base_tier`` (the ladder's lowest code): members without
    a tier row are in the base tier. With ``count_limit`` the total stops counting there.
    ``after`` seeks instead of an offset (``search_keyset``), for walks through the whole
    list such as an export."""
    conds: list[Any] = []
    if q:
        q = q.strip()
        if NUMBER_LIKE.fullmatch(q):
            # A number is a phone or a member number, looked up exactly through their indexes;
            # an OR with the name prefix would make every such search scan the table.
            digits = re.sub(r"[^0-9]", "", q)
            alternatives: list[Any] = []
            if len(digits) == 10 and luhn_valid(digits):
                alternatives.append(Member.member_no == digits)
            with contextlib.suppress(Invalid):
                alternatives.append(Member.phone_index == _phone_index(cipher, normalize_phone(q)))
            conds.append(or_(*alternatives) if alternatives else false())
        else:
            conds.append(Member.name.startswith(q, autoescape=True))
    if phone:
        conds.append(Member.phone_index == _phone_index(cipher, normalize_phone(phone)))
    if member_no:
        conds.append(Member.member_no == member_no.replace(" ", ""))
    if name:
        conds.append(Member.name.startswith(name.strip(), autoescape=True))
    if member_type:
        conds.append(Member.member_type == member_type)
    if status:
        conds.append(Member.status == status)
    if channel:
        conds.append(Member.registration_channel == channel)
    if store_code:
        conds.append(Member.registration_store_code == store_code)
    if tier:
        if tier == base_tier:  # no tier row, or a row that says base
            conds.append(
                Member.id.not_in(select(MemberTier.member_id).where(MemberTier.tier_code != tier))
            )
        else:
            conds.append(
                Member.id.in_(select(MemberTier.member_id).where(MemberTier.tier_code == tier))
            )
    if tag:
        conds.append(
            Member.id.in_(
                select(MemberTag.member_id)
                .join(Tag, Tag.id == MemberTag.tag_id)
                .where(Tag.name == tag)
            )
        )
    if count_limit is None:
        total = session.scalar(select(func.count()).select_from(Member).where(*conds)) or 0
    else:  # counting a whole large table costs more than the page itself: stop at the cap
        capped = select(Member.id).where(*conds).limit(count_limit).subquery()
        total = session.scalar(select(func.count()).select_from(capped)) or 0
    walk = search_keyset(sort, descending)
    if after is not None:
        conds.append(walk.where(after))
    # Ties (same name) are broken by the id, so that pages never overlap.
    order = walk.order_by()
    rows = session.scalars(
        select(Member).where(*conds).order_by(*order).limit(limit).offset(offset or None)
    )
    return list(rows), total


def search_keyset(sort: str, descending: bool) -> keyset.Keyset:
    """The order of ``search`` by ``sort``, for a walk by seeking (kit.keyset)."""
    return keyset.Keyset(SEARCH_SORTS.get(sort, Member.id), Member.id, descending)


#: sortable columns of the member list; "joined" is the registration order (the row id)
SEARCH_SORTS: Final[dict[str, Any]] = {
    "joined": Member.id,
    "member_no": Member.member_no,
    "name": Member.name,
}


def _ensure_active(member: Member) -> None:
    if member.status == "erased":
        raise Conflict("member_erased", f"Member {member.member_no} was erased on request.")


# ---- views -----------------------------------------------------------------------------------


def decrypt_phone(member: Member, cipher: FieldCipher) -> str:
    return cipher.decrypt(member.phone_enc, PHONE_CTX)


def decrypt_email(member: Member, cipher: FieldCipher) -> str | None:
    return cipher.decrypt(member.email_enc, EMAIL_CTX) if member.email_enc else None


def audit_snapshot(member: Member, cipher: FieldCipher) -> dict[str, Any]:
    """Profile as recorded in the audit trail: personal data masked."""
    email = decrypt_email(member, cipher)
    return {
        "phone": mask_phone(decrypt_phone(member, cipher)),
        "email": mask_email(email) if email else None,
        "name": member.name,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "gender": member.gender,
        "city": member.city,
        "region": member.region,
        "preferred_channel": member.preferred_channel,
        "member_type": member.member_type,
        "status": member.status,
    }


def _phone_view(member: Member, cipher: FieldCipher, full: bool) -> str:
    e164 = decrypt_phone(member, cipher)
    return display_phone(e164) if full else mask_phone(e164)


def to_out(
    session: Session,
    member: Member,
    cipher: FieldCipher,
    *,
    full_pii: bool,
    tags: list[Tag] | None = None,
) -> MemberOut:
    """The member's full view; ``tags`` when the caller read them already (``tags_of``)."""
    email = decrypt_email(member, cipher)
    referrer_no = (
        session.scalar(select(Member.member_no).where(Member.id == member.referrer_member_id))
        if member.referrer_member_id
        else None
    )
    return MemberOut(
        member_no=member.member_no,
        card_number=format_member_no(member.member_no),
        phone=_phone_view(member, cipher, full_pii),
        email=(email if full_pii else mask_email(email)) if email else None,
        name=member.name,
        birthday=member.birthday,
        gender=member.gender,
        city=member.city,
        region=member.region,
        preferred_channel=member.preferred_channel,
        member_type=member.member_type,
        status=member.status,
        registration=Registration(
            channel=member.registration_channel,
            store_code=member.registration_store_code,
            referrer_staff_id=member.referrer_staff_id,
            referrer_member_no=referrer_no,
        ),
        consents=[
            ConsentOut(
                channel=c.channel, granted=c.granted, updated_at=c.updated_at, source=c.source
            )
            for c in consents_of(session, member.id)
        ],
        tags=[t.name for t in (tags_of(session, [member.id])[member.id] if tags is None else tags)],
        profile_complete=domain.profile_complete(
            member.name, email, member.birthday, member.gender, member.city
        ),
        created_at=member.created_at,
        updated_at=member.updated_at,
    )


def summaries(
    session: Session, members: list[Member], cipher: FieldCipher, *, full_pii: bool
) -> list[MemberSummary]:
    """The list view of ``members``, in their order; their tags in one query."""
    tags = tags_of(session, [m.id for m in members])
    return [
        MemberSummary(
            member_no=m.member_no,
            phone=_phone_view(m, cipher, full_pii),
            name=m.name,
            member_type=m.member_type,
            status=m.status,
            tags=[t.name for t in tags[m.id]],
            created_at=m.created_at,
        )
        for m in members
    ]


def to_summary(
    session: Session, member: Member, cipher: FieldCipher, *, full_pii: bool
) -> MemberSummary:
    return summaries(session, [member], cipher, full_pii=full_pii)[0]


def end_portal_sessions(session: Session, member: Member, now: datetime) -> None:
    """Sign the member out of the portal everywhere: earlier session tokens stop working."""
    member.sessions_valid_after = now
    session.flush()
