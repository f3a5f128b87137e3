"""Exactly ``n`` answered requests at ``c`` connections with wrk (Debian's `wrk` package): a load
generator in C, so at hundreds of connections the figures are the server's, not a Python
client's (an asyncio client on the same two cores added seconds to the p99 at 200).

Each of wrk's threads stops once it has its share of answers (``wrk.thread:stop()``) and leaves a
file saying so; wrk itself waits out its duration, so once every thread is done it gets SIGINT,
which ends it at once with its summary (the duration is until then: within a poll of the last
answer). Requests still in flight when a thread stops are served but not counted, so the server
may see up to ``c`` more. Latencies are wrk's (its percentiles are of the counted requests)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

THREADS = 2

_SCRIPT = """
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  answered = 0
  share = tonumber(args[1])
  marker = args[2] .. "/done-" .. tid
  codes = {}
end
%(request)s
function response(status, headers, body)
  answered = answered + 1
  local key = tostring(status)
  codes[key] = (codes[key] or 0) + 1
  if answered == share then
    local f = io.open(marker, "w")
    f:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, string.format('"%%s": %%d', code, n)) end
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.2f, "p95_ms": %%.2f, '
    .. '"p99_ms": %%.2f, "max_ms": %%.2f, "statuses": {%%s}, "socket_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    table.concat(parts, ", "),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def lua_string(value: str) -> str:
    """A Lua string literal of ``value``'s UTF-8 bytes. Lua strings are bytes and wrk's LuaJIT
    knows no ``\\u`` escape, so quotes, backslashes, control and non-ASCII bytes go as
    ``\\ddd``."""
    return (
        '"'
        + "".join(
            f"\\{b:03d}" if b < 0x20 or b >= 0x7F or b in b'"\\' else chr(b) for b in value.encode()
        )
        + '"'
    )


def require() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")


def run_exact(
    url: str, n: int, c: int, request_lua: str, *, deadline_s: float = 900
) -> dict[str, Any]:
    """``request_lua`` defines ``request = function() ... end``; it may use the thread's
    ``counter`` and ``tid`` (0 or 1) to vary the requests. After ``deadline_s`` wrk is stopped
    even if a thread is short of its share (failed connections are not answers): the result
    then holds fewer than ``n`` requests and the socket errors."""
    threads = min(THREADS, c)
    share = -(-n // threads)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(_SCRIPT % {"request": request_lua})
        cmd = ["wrk", "-t", str(threads), "-c", str(c), "-d", "3600s", "--timeout", "30s"]
        proc = subprocess.Popen(
            [*cmd, "-s", str(script), url, "--", str(share), tmp],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        give_up = time.monotonic() + deadline_s
        while (
            len(list(Path(tmp).glob("done-*"))) < threads
            and proc.poll() is None
            and time.monotonic() < give_up
        ):
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    found = re.search(r"RESULT (\{.*\})", stdout)
    assert found, stdout + stderr
    result: dict[str, Any] = json.loads(found.group(1))
    result["connections"] = c
    result["rps"] = round(result["requests"] / result["seconds"], 1) if result["seconds"] else None
    result["statuses"] = dict(sorted(result["statuses"].items()))
    return result
