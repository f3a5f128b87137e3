"""A small HTTP load generator for the benchmarks that need an exact number of requests: ``n``
requests over ``c`` concurrent keep-alive connections (httpx, asyncio), each timed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

#: given the request's number, its method, path, headers and JSON body (None: no body)
Make = Callable[[int], tuple[str, str, dict[str, str], Any]]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[k], 2)


def run(base: str, n: int, c: int, make: Make, think_ms: float = 0) -> dict[str, Any]:
    """Send ``n`` requests with at most ``c`` in flight; statuses and latency percentiles.
    With ``think_ms`` each connection is a person: it waits a random 0–2 × ``think_ms``
    (mean ``think_ms``, fixed seed) before each request, as one reading a page would."""
    pause = random.Random(1)

    async def main() -> tuple[list[float], dict[int, int], float]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

            async def worker() -> None:
                while True:
                    try:
                        i = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    method, path, headers, body = make(i)
                    if think_ms:
                        await asyncio.sleep(pause.uniform(0, 2 * think_ms) / 1000)
                    start = time.perf_counter()
                    try:
                        r = await client.request(method, path, headers=headers, json=body)
                        code = r.status_code
                    except httpx.HTTPError:
                        code = 0
                    latencies.append((time.perf_counter() - start) * 1000)
                    statuses[code] = statuses.get(code, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(c)))
            return latencies, statuses, time.perf_counter() - started

    latencies, statuses, elapsed = asyncio.run(main())
    return {
        "requests": n,
        "connections": c,
        "seconds": round(elapsed, 2),
        "rps": round(n / elapsed, 1) if elapsed else None,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
