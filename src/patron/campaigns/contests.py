"""UGC contests (SPEC A8): a contest has a window; members submit an entry (text and an optional
image through the image store), operators moderate the queue (approve or reject with a note,
audited) and, once the window has closed, choose up to ``max_winners`` approved entries. Each
winner gets the contest's points and/or coupon exactly once: the winner flag moves by a guarded
UPDATE, the ledger's key is the contest and the member, the coupon's issue key is the contest.
Every change emits a ``contest.*`` event (webhooks), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.campaigns.models import Contest, ContestEntry
from patron.coupons import service as coupons
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import flows
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.webhooks import events

SOURCE_TYPE: Final = "ugc_contest"
MAX_TEXT: Final = 2000
MAX_NOTE: Final = 500
MAX_WINNERS: Final = 1000
MAX_POINTS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class ContestIn:
    name: str
    description: str
    starts_at: datetime
    ends_at: datetime
    reward_points: int
    reward_coupon: str | None
    max_winners: int


def _check(data: ContestIn) -> None:
    if not data.name.strip() or len(data.name) > 100:
        raise Invalid("invalid_contest", "Give the contest a name of 1 to 100 characters.")
    if data.ends_at <= data.starts_at:
        raise Invalid("invalid_contest", "The contest must end after it starts.")
    if not 1 <= data.max_winners <= MAX_WINNERS:
        raise Invalid("invalid_contest", f"Choose between 1 and {MAX_WINNERS} winners.")
    if not 0 <= data.reward_points <= MAX_POINTS:
        raise Invalid("invalid_contest", f"The reward is 0 to {MAX_POINTS:,} points.")
    if not data.reward_points and not data.reward_coupon:
        raise Invalid("invalid_contest", "A winner gets points, a coupon or both.")
    if len(data.description) > MAX_TEXT:
        raise Invalid("invalid_contest", f"The description is at most {MAX_TEXT} characters.")


def _locked(session: Session, code: str) -> Contest | None:
    return session.scalar(select(Contest).where(Contest.code == code).with_for_update())


def put_contest(session: Session, ctx: Ctx, code: str, data: ContestIn) -> Contest:
    """Create or change a contest by its code (audited)."""
    _check(data)
    if data.reward_coupon:
        coupons.get_template(session, data.reward_coupon)  # 404 for an unknown template
    contest = _locked(session, code)
    after = {
        "name": data.name,
        "starts_at": data.starts_at.isoformat(),
        "ends_at": data.ends_at.isoformat(),
        "reward_points": data.reward_points,
        "reward_coupon": data.reward_coupon,
        "max_winners": data.max_winners,
    }
    created = contest is None
    if contest is None:
        contest = Contest(code=code, created_at=ctx.now)
        session.add(contest)
    contest.name = data.name.strip()
    contest.description = data.description
    contest.starts_at = data.starts_at
    contest.ends_at = data.ends_at
    contest.reward_points = data.reward_points
    contest.reward_coupon = data.reward_coupon
    contest.max_winners = data.max_winners
    contest.updated_at = ctx.now
    try:
        session.flush()
    except IntegrityError as exc:
        # two requests creating the same code at once: the row lock protects only a row that
        # exists, so the unique key decides (the caller's unit of work rolls the INSERT back)
        raise Conflict(
            "contest_created_meanwhile",
            f"Contest {code} was created by another request just now; send this one again "
            "to change it.",
        ) from exc
    events.emit(session, "contest.changed", {"code": code, "created": created, **after}, ctx.now)
    audit.record(
        session,
        ctx.actor,
        "ugc_contest.create" if created else "ugc_contest.update",
        "ugc_contest",
        code,
        None,
        after,
        at=ctx.now,
    )
    return contest


def get_contest(session: Session, code: str) -> Contest:
    contest = session.scalar(select(Contest).where(Contest.code == code))
    if contest is None:
        raise NotFound("contest_not_found", f"No contest {code}.")
    return contest


@dataclass(frozen=True, slots=True)
class Counts:
    """A contest's entries waiting for moderation, approved, and winners."""

    pending: int = 0
    approved: int = 0
    winners: int = 0


def _counts(*conds: Any) -> Any:
    return (
        select(
            ContestEntry.contest_id.label("cid"),
            func.count().filter(ContestEntry.status == "pending").label("pending"),
            func.count().filter(ContestEntry.status == "approved").label("approved"),
            func.count().filter(ContestEntry.winner.is_(True)).label("winners"),
        )
        .where(*conds)
        .group_by(ContestEntry.contest_id)
        .subquery()
    )


def listing(session: Session) -> list[tuple[Contest, Counts]]:
    """Every contest, newest first, with its counts (one statement)."""
    counts = _counts()
    rows = session.execute(
        select(Contest, counts.c.pending, counts.c.approved, counts.c.winners)
        .outerjoin(counts, counts.c.cid == Contest.id)
        .order_by(Contest.starts_at.desc(), Contest.id.desc())
    ).all()
    return [(c, Counts(int(p or 0), int(a or 0), int(w or 0))) for c, p, a, w in rows]


def list_contests(session: Session) -> list[tuple[Contest, int, int]]:
    """Every contest, newest first, with its entries waiting for moderation and approved."""
    return [(c, n.pending, n.approved) for c, n in listing(session)]


def counts_of(session: Session, contest: Contest) -> Counts:
    counts = _counts(ContestEntry.contest_id == contest.id)
    row = session.execute(select(counts.c.pending, counts.c.approved, counts.c.winners)).first()
    return Counts() if row is None else Counts(int(row[0]), int(row[1]), int(row[2]))


def entrant(session: Session, member_no: str) -> int:
    """The id of an active member who may enter, by number (one read, no relationships)."""
    row = session.execute(
        select(Member.id, Member.status).where(Member.member_no == member_no)
    ).first()
    if row is None:
        raise NotFound("member_not_found", f"No member with number {member_no}.")
    if row.status != "active":
        raise Conflict("member_inactive", "This membership is not active.")
    return int(row.id)


def member_no(session: Session, entry: ContestEntry) -> str:
    return str(session.scalar(select(Member.member_no).where(Member.id == entry.member_id)))


def open_contests(session: Session, now: datetime) -> list[Contest]:
    return list(
        session.scalars(
            select(Contest)
            .where(Contest.starts_at <= now, Contest.ends_at > now)
            .order_by(Contest.ends_at, Contest.id)
        )
    )


def _entered(session: Session, contest_id: int, member_id: int) -> bool:
    return (
        session.scalar(
            select(ContestEntry.id).where(
                ContestEntry.contest_id == contest_id, ContestEntry.member_id == member_id
            )
        )
        is not None
    )


def submit(
    session: Session,
    ctx: Ctx,
    code: str,
    member_id: int,
    text: str,
    image_key: str | None = None,
) -> ContestEntry:
    """A member's entry (one per contest) while the contest is open; it waits for moderation.
    The caller stores the image (``mall.images``) after this succeeded checks."""
    contest = get_contest(session, code)
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise Invalid(
            "invalid_entry",
            f"Write your entry: 1 to {MAX_TEXT} characters.",
            details={"field": "text"},
        )
    if not contest.starts_at <= ctx.now < contest.ends_at:
        raise Conflict("contest_not_open", "This contest is not taking entries now.")
    if _entered(session, contest.id, member_id):
        raise Conflict("entry_exists", "You have already entered this contest.")
    entry = ContestEntry(
        contest_id=contest.id,
        member_id=member_id,
        text=text,
        image_key=image_key,
        status="pending",
        note="",
        winner=False,
        created_at=ctx.now,
    )
    session.add(entry)
    try:
        session.flush()
    except IntegrityError as exc:
        # the same member's entry sent twice at once (a double tap): the unique key decides;
        # the caller's unit of work rolls the failed INSERT back
        raise Conflict("entry_exists", "You have already entered this contest.") from exc
    payload = {"contest": contest.code, "entry_id": entry.id, "has_image": image_key is not None}
    events.emit_many(
        session, [events.NewEvent("contest.entry_submitted", payload, member_id)], ctx.now
    )
    return entry


def moderate(
    session: Session,
    ctx: Ctx,
    entry_id: int,
    *,
    approve: bool,
    note: str = "",
    contest_id: int | None = None,
) -> ContestEntry:
    """Approve or reject a pending entry, with a note (audited). A decided entry stays decided:
    a second decision (two moderators at once) is a 409. With ``contest_id``, an entry of
    another contest is not found."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise Invalid("invalid_note", f"The note is at most {MAX_NOTE} characters.")
    status = "approved" if approve else "rejected"
    conds = [ContestEntry.id == entry_id, ContestEntry.status == "pending"]
    if contest_id is not None:
        conds.append(ContestEntry.contest_id == contest_id)
    row = session.execute(
        update(ContestEntry)
        .where(*conds)
        .values(status=status, note=note, moderated_at=ctx.now)
        .returning(ContestEntry.contest_id, ContestEntry.member_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        entry = session.get(ContestEntry, entry_id)
        if entry is None or (contest_id is not None and entry.contest_id != contest_id):
            raise NotFound("entry_not_found", "This entry no longer exists.")
        raise Conflict("entry_already_moderated", "This entry was already approved or rejected.")
    hit, member_id = row
    payload = {"contest_id": hit, "entry_id": entry_id, "status": status, "note": note}
    events.emit_many(
        session, [events.NewEvent("contest.entry_moderated", payload, member_id)], ctx.now
    )
    audit.record(
        session,
        ctx.actor,
        "ugc_entry.approve" if approve else "ugc_entry.reject",
        "ugc_entry",
        str(entry_id),
        {"status": "pending"},
        {"status": status, "note": note, "contest_id": hit},
        at=ctx.now,
    )
    entry = session.get(ContestEntry, entry_id, populate_existing=True)
    assert entry is not None
    return entry


def entries(
    session: Session, contest: Contest, status: str | None = None
) -> list[tuple[ContestEntry, str]]:
    """A contest's entries (of one status) with the member's number, oldest first."""
    stmt = (
        select(ContestEntry, Member.member_no)
        .join(Member, Member.id == ContestEntry.member_id)
        .where(ContestEntry.contest_id == contest.id)
        .order_by(ContestEntry.id)
    )
    if status is not None:
        stmt = stmt.where(ContestEntry.status == status)
    return [(e, no) for e, no in session.execute(stmt)]


def get_entry(session: Session, contest: Contest, entry_id: int) -> ContestEntry:
    entry = session.get(ContestEntry, entry_id)
    if entry is None or entry.contest_id != contest.id:
        raise NotFound("entry_not_found", "This entry no longer exists.")
    return entry


def member_entry(session: Session, contest: Contest, member_id: int) -> ContestEntry | None:
    return session.scalar(
        select(ContestEntry).where(
            ContestEntry.contest_id == contest.id, ContestEntry.member_id == member_id
        )
    )


@dataclass(frozen=True, slots=True)
class Winners:
    chosen: list[int]
    #: entries named again that had already won (nothing given twice)
    already: list[int]


def choose_winners(session: Session, ctx: Ctx, code: str, entry_ids: Sequence[int]) -> Winners:
    """Make approved entries winners once the contest has closed, and reward each exactly once.
    The contest's row is locked, so two operators choosing at once cannot pass ``max_winners``."""
    contest = session.scalar(select(Contest).where(Contest.code == code).with_for_update())
    if contest is None:
        raise NotFound("contest_not_found", f"No contest {code}.")
    if ctx.now < contest.ends_at:
        raise Conflict("contest_still_open", "Choose the winners after the contest has closed.")
    wanted = sorted(set(entry_ids))
    rows = {
        e.id: e
        for e in session.scalars(
            select(ContestEntry).where(
                ContestEntry.contest_id == contest.id, ContestEntry.id.in_(wanted)
            )
        )
    }
    bad = [i for i in wanted if i not in rows or rows[i].status != "approved"]
    if bad:
        raise Invalid(
            "entry_not_approved",
            "Only approved entries of this contest can win.",
            details={"entries": bad},
        )
    already = [i for i in wanted if rows[i].winner]
    new = [i for i in wanted if not rows[i].winner]
    won = (
        session.scalar(
            select(func.count())
            .select_from(ContestEntry)
            .where(ContestEntry.contest_id == contest.id, ContestEntry.winner.is_(True))
        )
        or 0
    )
    if won + len(new) > contest.max_winners:
        raise Conflict(
            "too_many_winners",
            f"This contest has {contest.max_winners} winner places; {won} are taken.",
        )
    rewarded = [_reward(session, ctx, contest, rows[entry_id]) for entry_id in new]
    events.emit_many(session, [e for e in rewarded if e is not None], ctx.now)
    return Winners(new, already)


def _reward(
    session: Session, ctx: Ctx, contest: Contest, entry: ContestEntry
) -> events.NewEvent | None:
    """Reward one winner; returns its ``contest.winner_rewarded`` event (emitted together)."""
    moved = session.execute(
        update(ContestEntry)
        .where(ContestEntry.id == entry.id, ContestEntry.winner.is_(False))
        .values(winner=True, rewarded_at=ctx.now)
        .returning(ContestEntry.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if moved is None:  # pragma: no cover - the contest's lock makes this unreachable
        return None
    posting_id = None
    if contest.reward_points:
        earned = flows.earn(
            session,
            ctx,
            entry.member_id,
            points=contest.reward_points,
            source_type=SOURCE_TYPE,
            source_id=f"{contest.id}:{entry.member_id}",
            reason=f"contest winner: {contest.name}",
            pending_days=0,
        )
        posting_id = earned.posting.posting_id
    code = None
    if contest.reward_coupon:
        report = coupons.issue_many(
            session,
            ctx,
            contest.reward_coupon,
            [entry.member_id],
            reason="campaign",
            key=f"contest:{contest.code}",
        )
        code = report.issued[0].code if report.issued else None
    session.execute(
        update(ContestEntry)
        .where(ContestEntry.id == entry.id)
        .values(posting_id=posting_id, coupon_code=code)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        ctx.actor,
        "ugc_entry.win",
        "ugc_entry",
        str(entry.id),
        None,
        {"contest": contest.code, "points": contest.reward_points, "coupon": code},
        at=ctx.now,
    )
    payload = {
        "contest": contest.code,
        "entry_id": entry.id,
        "points": contest.reward_points,
        "posting_id": posting_id,
        "coupon_code": code,
    }
    return events.NewEvent("contest.winner_rewarded", payload, entry.member_id)
