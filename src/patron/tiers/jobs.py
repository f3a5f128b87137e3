"""Periodic tier evaluation: downgrades (with retention threshold and grace) happen only here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron import context
from patron.auth.principal import Principal
from patron.db import Database
from patron.ledger import service as ledger
from patron.tiers import service
from patron.tiers.models import MemberTier


def run_tiers(
    db: Database,
    now: datetime,
    tz: ZoneInfo,
    *,
    batch_members: int = 500,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Evaluate every member whose evaluation date has come. Idempotent: an evaluated member
    gets its next evaluation date, so a second run the same day finds nothing to do."""
    outcome: Counter[str] = Counter()
    actor = Principal.system("job:tiers")
    after = 0
    while True:
        with db.unit_of_work() as session:
            due = list(
                session.scalars(
                    select(MemberTier.member_id)
                    .where(
                        MemberTier.next_evaluation_at.is_not(None),
                        MemberTier.next_evaluation_at <= now,
                        MemberTier.member_id > after,
                    )
                    .order_by(MemberTier.member_id)
                    .limit(batch_members)
                )
            )
            if not due:
                return dict(outcome)
            ctx = context.build(session, actor, now, tz)
            ladder = service.get_ladder(session)
            for member_id in due:
                ledger.begin(session, ctx, member_id)  # the member's lock, in the usual order
                outcome[service.evaluate_member(session, ctx, member_id, ladder)] += 1
            after = due[-1]
        if progress:
            progress(len(due))
