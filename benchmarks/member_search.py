"""Console member search on a large member table (PostgreSQL).

    python benchmarks/member_search.py --members 200000

Fills a scratch database with members (encrypted phones with their blind index, names, a
registration store), a tag on every 50th member and a tier row on every 10th, then times the
searches the console's member list makes (each: the count, capped at 1,000, and a page of 20)
and prints a JSON line of median milliseconds per search. Then it walks the whole list in
batches of 1,000, as the member export does, by registration and by name: once past an OFFSET
(the baseline) and once seeking past the last row (``after``, what the export uses), and
reports both times and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import insert

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database

from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.kit.ids import luhn_check_digit
from patron.members import service
from patron.members.models import Member, MemberTag, Tag
from patron.tiers.models import MemberTier

NOW = datetime(2026, 3, 1, 2, tzinfo=UTC)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def member_no(i: int) -> str:
    body = f"{100_000_000 + i:09d}"
    return body + luhn_check_digit(body)


def phone(i: int) -> str:
    return f"+86139{i:08d}"


def fill(db: Database, cipher: FieldCipher, n: int) -> None:
    batch = 5_000
    with db.unit_of_work() as s:
        tag_id = s.scalar(
            insert(Tag).values(name="常客", kind="manual", created_at=NOW).returning(Tag.id)
        )
    for start in range(0, n, batch):
        rows = [
            {
                "id": i + 1,
                "member_no": member_no(i),
                "phone_enc": cipher.encrypt(phone(i), service.PHONE_CTX),
                "phone_index": cipher.blind_index(phone(i), service.PHONE_CTX),
                # a quarter registered with a phone alone: no name
                "name": None if i % 4 == 3 else SURNAMES[i % len(SURNAMES)] + f"{i:06d}",
                "member_type": "regular",
                "status": "active",
                "registration_channel": "store",
                "registration_store_code": f"S{i % 300:03d}",
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i in range(start, min(start + batch, n))
        ]
        with db.unit_of_work() as s:
            s.execute(insert(Member), rows)
            tagged = [r["id"] for r in rows if r["id"] % 50 == 0]
            if tagged:
                s.execute(
                    insert(MemberTag),
                    [
                        {"member_id": m, "tag_id": tag_id, "created_at": NOW, "created_by": "bench"}
                        for m in tagged
                    ],
                )
            tiered = [r["id"] for r in rows if r["id"] % 10 == 0]
            if tiered:
                s.execute(
                    insert(MemberTier),
                    [
                        {
                            "member_id": m,
                            "tier_code": "gold" if m % 20 == 0 else "silver",
                            "since": NOW,
                            "updated_at": NOW,
                        }
                        for m in tiered
                    ],
                )
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    cipher = FieldCipher(b"d" * 32, b"i" * 32)
    with scratch_database() as url:
        db = Database(url)
        t0 = time.perf_counter()
        fill(db, cipher, args.members)
        fill_s = round(time.perf_counter() - t0, 1)
        target = args.members // 2
        cases = {
            "phone": {"q": phone(target)[3:]},
            "member_no": {"q": member_no(target)},
            "name_prefix": {"q": SURNAMES[target % len(SURNAMES)] + f"{target:06d}"[:4]},
            "tag": {"tag": "常客"},
            "tier_gold": {"tier": "gold", "base_tier": "regular"},
            "tier_base": {"tier": "regular", "base_tier": "regular"},
            "store": {"store_code": "S042"},
            "everyone_page_1": {},
            "everyone_page_50": {"offset": 49 * 20},
        }
        results: dict[str, object] = {"members": args.members, "fill_seconds": fill_s}
        for name, kwargs in cases.items():
            times = []
            for _ in range(args.repeat):
                with db.unit_of_work() as s:
                    t = time.perf_counter()
                    _, total = service.search(
                        s,
                        cipher,
                        limit=20,
                        count_limit=1000,  # as the console's member list does
                        **kwargs,  # type: ignore[arg-type]
                    )
                    times.append((time.perf_counter() - t) * 1000)
            results[name] = {"ms": round(statistics.median(times), 1), "total": total}
        results["walk"] = {sort: _walks(db, cipher, sort) for sort in ("joined", "name")}
        db.dispose()
    print(json.dumps(results, ensure_ascii=False))


def _walks(db: Database, cipher: FieldCipher, sort: str) -> dict[str, float]:
    """Seconds to read every member in batches of 1,000 by ``sort``, past an OFFSET and by
    seeking; both walks must read the same members in the same order."""
    seen: dict[str, list[int]] = {}
    took: dict[str, float] = {}
    descending = sort == "joined"
    walk = service.search_keyset(sort, descending)
    for how in ("offset", "seek"):
        ids: list[int] = []
        after = walk.first()
        t = time.perf_counter()
        with db.unit_of_work() as s:
            while after is not None:
                rows, _ = service.search(
                    s, cipher, limit=1000, count_limit=0, sort=sort, descending=descending,
                    offset=len(ids) if how == "offset" else 0,
                    after=after if how == "seek" else None,
                )  # fmt: skip
                ids += [m.id for m in rows]
                if how == "offset":
                    after = walk.first() if len(rows) == 1000 else None
                else:
                    after = walk.next(after, rows, 1000)
                s.expunge_all()  # one batch of objects at a time, as the export holds
        took[how] = round(time.perf_counter() - t, 2)
        seen[how] = ids
    assert seen["offset"] == seen["seek"], "the two walks differ"
    return {**took, "offset_over_seek": round(took["offset"] / took["seek"], 1)}


if __name__ == "__main__":
    main()
