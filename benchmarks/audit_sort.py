"""The console's audit log sorted by each column on a large log (PostgreSQL).

    python benchmarks/audit_sort.py --records 1000000

Fills a scratch database with audit records (a dozen actions, four actor kinds, a few hundred
actor names, member and adjustment entities), then times what the audit page asks for each
sort (``audit.service.search``: the count and a page of 50), unfiltered and for one entity
type, on page 1 and page 50, and prints a JSON line of median milliseconds per case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from sqlalchemy import text

sys.path.insert(0, os.path.dirname(__file__))
from _common import scratch_database

from patron.audit import service
from patron.db import Database

FILL = """
INSERT INTO audit_log (at, actor_type, actor_id, actor_label, action, entity_type, entity_id,
                       before, after)
SELECT timestamptz '2025-03-01 00:00+00' + g * interval '30 seconds',
       (ARRAY['staff','apikey','member','system'])[1 + g % 4],
       g % 300,
       'user-' || lpad((g % 300)::text, 3, '0'),
       (ARRAY['member.register','member.update','member.consent','member.tag_add',
              'points.earn','points.redeem','points.adjust','points.adjust_approve',
              'tier.override','staff.create','program.update','order.create'])[1 + g % 12],
       (ARRAY['member','points_adjustment','member','program'])[1 + g % 4],
       lpad((g % 200000)::text, 10, '0'),
       NULL, '{"n": 1}'::jsonb
FROM generate_series(1, :n) AS g
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with scratch_database() as url:
        db = Database(url)
        t0 = time.perf_counter()
        with db.unit_of_work() as s:
            s.execute(text(FILL), {"n": args.records})
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE audit_log")
            conn.commit()
        results: dict[str, object] = {
            "records": args.records,
            "fill_seconds": round(time.perf_counter() - t0, 1),
        }
        for sort in service.SEARCH_SORTS:
            for descending in (True, False):
                for label, filters in (("all", {}), ("members", {"entity_type": "member"})):
                    for page in (1, 50):
                        times = []
                        for _ in range(args.repeat):
                            with db.unit_of_work() as s:
                                t = time.perf_counter()
                                service.search(
                                    s,
                                    limit=50,
                                    offset=(page - 1) * 50,
                                    sort=sort,
                                    descending=descending,
                                    **filters,  # type: ignore[arg-type]
                                )
                                times.append((time.perf_counter() - t) * 1000)
                        name = f"{sort}_{'desc' if descending else 'asc'}_{label}_p{page}"
                        results[name] = round(statistics.median(times), 1)
        db.dispose()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
