"""``patron doctor``: look over a deployment and say what to fix, before a member finds out.

Each check returns findings (error: fix before serving; warning: fix soon; ok: checked and
fine). Checks take what they need as arguments so tests can give them a broken world.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import text

from patron.config import KEY_NAMES, ConfigError, Settings
from patron.db import Database

Level = Literal["ok", "warning", "error"]

MIN_FREE_BYTES = 2 * 1024**3  # a pg_dump of a large chain and a day of WAL need room
MIN_FREE_SHARE = 0.10
CLOCK_WARN_SECONDS = 2.0
CLOCK_ERROR_SECONDS = 30.0


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


DiskUsage = Callable[[Path], tuple[int, int, int]]  # total, used, free


def check_keys(settings: Settings) -> list[Finding]:
    try:
        keys = settings.keys()
    except (ConfigError, ValueError, KeyError, OSError) as exc:
        return [Finding("error", "keys", str(exc), "`patron keys generate` prints a fresh set")]
    out: list[Finding] = []
    for name, key in keys.items():
        # Real keys are 32 random bytes; a placeholder ("dddd…", a counter) repeats itself.
        if len(set(key)) < 16:
            out.append(
                Finding(
                    "error",
                    "keys",
                    f"{name} is not random (it looks like an example or placeholder key)",
                    "generate real keys with `patron keys generate`; a key cannot be changed "
                    "once data is encrypted with it, so do this before the first member",
                )
            )
    if len(set(keys.values())) < len(keys):
        out.append(
            Finding(
                "error",
                "keys",
                "two keys have the same value",
                "each of PATRON_DATA_KEY, PATRON_INDEX_KEY and PATRON_TOKEN_KEY must differ",
            )
        )
    from_env = all(getattr(settings, n) is not None for n in KEY_NAMES)
    if not from_env and settings.key_file.exists():
        mode = settings.key_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            out.append(
                Finding(
                    "error",
                    "keys",
                    f"the key file {settings.key_file} can be read by other users",
                    f"chmod 600 {settings.key_file}",
                )
            )
        if settings.env == "production" and settings.key_file == Path("var/keys.json"):
            out.append(
                Finding(
                    "warning",
                    "keys",
                    "keys come from var/keys.json, the file development mode generates",
                    "set PATRON_DATA_KEY, PATRON_INDEX_KEY and PATRON_TOKEN_KEY from a secret "
                    "store, and back them up apart from the database",
                )
            )
    return out or [Finding("ok", "keys", "three distinct random keys are configured")]


def check_database(settings: Settings, db: Database) -> list[Finding]:
    from patron.migrate import pending

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return [
            Finding(
                "error",
                "database",
                f"the database does not answer ({type(exc).__name__})",
                "check PATRON_DATABASE_URL, that PostgreSQL runs, and the network/firewall",
            )
        ]
    out = [Finding("ok", "database", f"{db.dialect} answers")]
    if pending(settings.database_url):
        out.append(
            Finding(
                "error",
                "schema",
                "the database schema is behind this release",
                "run `patron migrate` (once per release, before starting the new servers)",
            )
        )
    else:
        out.append(Finding("ok", "schema", "the schema is up to date"))
    if db.dialect == "sqlite" and settings.env == "production":
        out.append(
            Finding(
                "warning",
                "database",
                "production runs on SQLite: one process only, no replicas, no failover",
                "use PostgreSQL for a chain (docs/operations.md, Deploy)",
            )
        )
    return out


def check_clock(settings: Settings, db: Database, now: datetime) -> list[Finding]:
    from zoneinfo import ZoneInfo

    out: list[Finding] = []
    tz = ZoneInfo(settings.business_timezone)
    local = now.astimezone(tz)
    out.append(
        Finding(
            "ok",
            "timezone",
            f"business days run in {settings.business_timezone} (now {local:%Y-%m-%d %H:%M}, "
            f"UTC{local:%z})",
        )
    )
    if db.dialect != "postgresql":
        return out
    try:
        with db.engine.connect() as conn:
            server_now = conn.execute(text("SELECT now()")).scalar_one()
    except Exception:
        return out  # reported by the database check
    skew = abs((server_now.astimezone(UTC) - now).total_seconds())
    if skew >= CLOCK_WARN_SECONDS:
        level: Level = "error" if skew >= CLOCK_ERROR_SECONDS else "warning"
        out.append(
            Finding(
                level,
                "clock",
                f"this host's clock and the database's differ by {skew:.0f} s",
                "run NTP (chrony or systemd-timesyncd) on every host; expiry, check-in days "
                "and token lifetimes depend on the time",
            )
        )
    else:
        out.append(Finding("ok", "clock", f"clock agrees with the database ({skew:.1f} s)"))
    return out


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk_usage(path: Path) -> tuple[int, int, int]:
    usage = shutil.disk_usage(path)
    return usage.total, usage.used, usage.free


def check_disk(settings: Settings, disk_usage: DiskUsage = _disk_usage) -> list[Finding]:
    places = {"backups": settings.backup_dir}
    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            places["database"] = Path(database).parent
    out: list[Finding] = []
    for what, place in places.items():
        where = _existing(place)
        total, _used, free = disk_usage(where)
        gib = free / 1024**3
        if free < MIN_FREE_BYTES or (total and free / total < MIN_FREE_SHARE):
            out.append(
                Finding(
                    "error" if free < MIN_FREE_BYTES / 4 else "warning",
                    "disk",
                    f"only {gib:.1f} GiB free for the {what} ({where})",
                    "free space or grow the volume; keep room for a full backup and a day of "
                    "growth",
                )
            )
        else:
            out.append(Finding("ok", "disk", f"{gib:.1f} GiB free for the {what}"))
    return out


def check_settings(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    prod = settings.env == "production"
    if settings.env == "demo":
        out.append(
            Finding(
                "warning",
                "settings",
                "PATRON_ENV=demo: SMS codes are shown on a demo page, not sent",
                "set PATRON_ENV=production for a real deployment",
            )
        )
    if prod and settings.secure_cookies is False:
        out.append(
            Finding(
                "error",
                "settings",
                "PATRON_SECURE_COOKIES=false in production: sign-in cookies travel over HTTP",
                "serve over HTTPS and remove PATRON_SECURE_COOKIES",
            )
        )
    if prod and settings.hsts is False:
        out.append(
            Finding(
                "warning",
                "settings",
                "HSTS is off in production",
                "remove PATRON_HSTS=false once every page is served over HTTPS",
            )
        )
    if settings.bench_endpoints:
        out.append(
            Finding(
                "error" if prod else "warning",
                "settings",
                "PATRON_BENCH_ENDPOINTS is on: an unauthenticated benchmark endpoint writes rows",
                "remove PATRON_BENCH_ENDPOINTS",
            )
        )
    if prod and settings.log_level.upper() == "DEBUG":
        out.append(
            Finding(
                "warning",
                "settings",
                "DEBUG logging in production",
                "PATRON_LOG_LEVEL=INFO",
            )
        )
    if prod and not settings.log_json:
        out.append(
            Finding(
                "warning",
                "settings",
                "logs are not JSON: log shippers cannot parse them",
                "remove PATRON_LOG_JSON=false",
            )
        )
    for net in settings.webhook_allowed_networks:
        if net.prefixlen < 8:
            out.append(
                Finding(
                    "error",
                    "settings",
                    f"PATRON_WEBHOOK_ALLOWED_NETWORKS allows {net}: webhooks could reach the "
                    "database or cloud metadata",
                    "allow only the receiver's own network (e.g. 10.20.0.0/16)",
                )
            )
    if prod and settings.metrics_enabled and settings.metrics_token is None:
        out.append(
            Finding(
                "ok",
                "settings",
                "/metrics answers private addresses only (set PATRON_METRICS_TOKEN to scrape "
                "from elsewhere)",
            )
        )
    return out or [Finding("ok", "settings", "settings look sane")]


def check_broker(settings: Settings) -> list[Finding]:
    """With a message broker set, it must answer: otherwise published messages wait unsent."""
    if settings.message_broker_url is None:
        return []
    from patron.messaging import broker

    queue = broker.from_settings(settings, timeout=broker.PROBE_TIMEOUT)
    assert queue is not None
    try:
        queue.client.ping()
        backlog = queue.backlog()
    except Exception as exc:  # any redis error: connection, auth, TLS
        return [
            Finding(
                "error",
                "broker",
                f"the message broker does not answer ({type(exc).__name__})",
                "start Redis or correct PATRON_MESSAGE_BROKER_URL; messages wait meanwhile",
            )
        ]
    finally:
        queue.client.close()
    return [Finding("ok", "broker", f"Redis answers; {backlog} messages wait in the stream")]


def check_jobs(db: Database, now: datetime) -> list[Finding]:
    """The scheduled jobs as recorded in the database (jobs/runs.py): one that failed last or
    has not succeeded for three intervals is a warning: points would not expire, messages not
    go out."""
    from patron.jobs import runs
    from patron.jobs.tasks import SCHEDULE

    with db.session() as session:
        jobs = runs.statuses(session, SCHEDULE, now)
    if all(j.run is None for j in jobs):
        return [
            Finding(
                "warning",
                "jobs",
                "no scheduled job has run yet",
                "start `patron serve` (PATRON_SCHEDULER on), `patron jobs scheduler`, or the "
                "`patron jobs run` entries of your cron",
            )
        ]
    out = []
    for job in jobs:
        run = job.run
        if run is None or job.state in ("ok", "never"):
            continue
        if job.state == "failed":
            message = f"job {job.job} failed at {run.last_finished_at:%Y-%m-%d %H:%M} UTC"
            message += f" ({run.last_error}) on {run.last_host}"
            fix = "its log line `job_failed` names the error; the scheduler retries it"
        else:
            since = f"{run.last_ok_at:%Y-%m-%d %H:%M} UTC" if run.last_ok_at else "ever"
            message = f"job {job.job} has not succeeded since {since}"
            fix = "check that a scheduler runs (`patron jobs scheduler` or PATRON_SCHEDULER)"
        out.append(Finding("warning", "jobs", message, fix))
    ran = sum(1 for j in jobs if j.run is not None)
    return out or [Finding("ok", "jobs", f"{ran} jobs ran and their last runs succeeded")]


def run(
    settings: Settings,
    *,
    now: datetime | None = None,
    disk_usage: DiskUsage | None = None,
) -> list[Finding]:
    findings = check_keys(settings)
    findings += check_settings(settings)
    findings += check_disk(settings, disk_usage or _disk_usage)
    findings += check_broker(settings)
    db = Database(settings.database_url)
    try:
        findings += check_database(settings, db)
        findings += check_clock(settings, db, now or datetime.now(UTC))
        if not any(f.level == "error" for f in findings if f.check in ("database", "schema")):
            findings += check_jobs(db, now or datetime.now(UTC))
    finally:
        db.dispose()
    return findings
