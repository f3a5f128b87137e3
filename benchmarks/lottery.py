"""Lottery odds: 100,000 draws with the production RNG (``secrets``) against a pool's published
probabilities, and a chi-square goodness-of-fit test.

    python benchmarks/lottery.py [--draws 100000]

Prints the observed and expected counts per prize and a final JSON line. The draws use
``mall.domain.pick`` with ``SystemRng``, exactly as ``mall.lottery.draw`` does. Goal: the test
does not reject the published odds (p ≥ 0.001).
"""

from __future__ import annotations

import argparse
import json
import time

from scipy.stats import chisquare

from patron.mall import domain
from patron.mall.domain import PrizeOdds, SystemRng

POOL = [  # a wheel: rare item, points prizes, the fallback
    PrizeOdds(1, 1_000, 10, False),
    PrizeOdds(2, 19_000, None, False),
    PrizeOdds(3, 80_000, None, False),
    PrizeOdds(4, 300_000, None, False),
    PrizeOdds(5, 600_000, None, True),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=100_000)
    args = parser.parse_args()
    domain.validate_pool([(p.ppm, p.stock, p.is_fallback) for p in POOL])
    rng = SystemRng()
    seen = dict.fromkeys((p.id for p in POOL), 0)
    start = time.perf_counter()
    for _ in range(args.draws):
        seen[domain.pick(POOL, rng.randbelow(domain.PPM)).id] += 1
    elapsed = time.perf_counter() - start
    expected = [p.ppm * args.draws / domain.PPM for p in POOL]
    stat, p_value = chisquare([seen[p.id] for p in POOL], expected)
    for p, e in zip(POOL, expected, strict=True):
        print(f"prize {p.id}: observed {seen[p.id]:>7}  expected {e:>9.1f}")
    print(
        json.dumps(
            {
                "benchmark": "lottery_odds",
                "draws": args.draws,
                "chi_square": round(float(stat), 3),
                "p_value": round(float(p_value), 4),
                "odds_agree": bool(p_value >= 0.001),
                "draws_per_s": round(args.draws / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
