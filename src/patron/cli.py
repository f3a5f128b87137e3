"""The ``patron`` command: serve, migrate, demo, staff, API keys (and more as domains land)."""

from __future__ import annotations

import json
import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron.config import ConfigError, Settings, generate_keys, get_settings

app = typer.Typer(help="Patron: membership and loyalty for retailers.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff users.", no_args_is_help=True)
apikey_app = typer.Typer(help="Integration API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(apikey_app, name="apikey")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = get_settings()
        settings.keys()
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    return settings


def _migrated_settings() -> Settings:
    """Settings for commands that use the database: refuse a schema that is behind."""
    from patron.migrate import pending

    settings = _settings()
    if pending(settings.database_url):
        err.print("[red]the database schema is not up to date:[/red] run `patron migrate` first")
        raise typer.Exit(2)
    return settings


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from patron.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    console.print(f"schema is up to date on {_safe_url(settings.database_url)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PATRON_PORT)")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes: about 2 per CPU core on PostgreSQL (docs/operations.md); "
            "1 on SQLite",
        ),
    ] = 1,
    graceful_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            max=600,
            help="On SIGTERM, stop accepting connections and give requests in flight this many "
            "seconds to finish",
        ),
    ] = 30,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies (comma-separated addresses, or *) whose X-Forwarded-For and "
            "X-Forwarded-Proto are trusted, so the client address (used by the SMS code limits) "
            "is the client's, not the proxy's. Default: 127.0.0.1 (FORWARDED_ALLOW_IPS)."
        ),
    ] = None,
) -> None:
    """Serve the API, the operator console and the member portal."""
    import uvicorn

    settings = _settings()
    if migrate_first:
        # Migrate before starting workers: several workers racing to create tables would crash.
        from patron.migrate import upgrade

        upgrade(settings.database_url)
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker is its own process: /metrics adds their counters up through this directory.
        import tempfile

        metrics_dir = tempfile.mkdtemp(prefix="patron-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    console.print(
        f"Patron serving on http://{host or settings.host}:{port or settings.port} "
        f"({_safe_url(settings.database_url)})"
    )
    uvicorn.run(
        "patron.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        access_log=False,  # our middleware logs requests without query strings
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=graceful_timeout,
    )
    if metrics_dir is not None:
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def demo(
    members: Annotated[int, typer.Option(min=0, max=5_000_000, help="Members to create")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data")] = 2026,
    history: Annotated[
        bool, typer.Option("--history/--no-history", help="Two years of orders and returns")
    ] = True,
) -> None:
    """Migrate, then load demo staff, an API key and members. Safe to run again."""
    from patron.db import Database
    from patron.demo.seed import seed as seed_demo
    from patron.kit.clock import SystemClock
    from patron.kit.crypto import FieldCipher
    from patron.kit.timeutil import business_tz
    from patron.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    keys = settings.keys()
    db = Database(settings.database_url)
    cipher = FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys())
    with console.status("loading demo data…"), db.unit_of_work() as session:
        result = seed_demo(
            session,
            cipher,
            SystemClock(),
            business_tz(settings.business_timezone),
            members_count=members,
            rng_seed=seed,
            credentials_file=settings.key_file.parent / "demo-credentials.json",
        )
    if history and result.members_created:
        from rich.progress import Progress

        from patron.demo.retail import load_history

        with Progress(console=err) as bar:
            task = bar.add_task("two years of orders", total=None)
            counts = load_history(
                db,
                tz=business_tz(settings.business_timezone),
                now=SystemClock().now(),
                rng_seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        console.print(
            f"Orders: {counts.get('orders', 0)}, returns: {counts.get('returns', 0)}, "
            f"paid partly with points: {counts.get('points_payments', 0)}"
        )
        from patron.demo.fraud import seed_earning_fraud

        seeded = seed_earning_fraud(
            db, cipher, now=SystemClock().now(), tz=business_tz(settings.business_timezone)
        )
        console.print(f"Seeded earning fraud: {seeded['members']} members (tag demo-fraud)")
    table = Table(title="Demo staff logins (demo only)")
    table.add_column("username")
    table.add_column("password")
    table.add_column("role")
    for row in result.staff:
        table.add_row(*row)
    console.print(table)
    console.print(f"Demo API key (X-API-Key): [bold]{result.api_key}[/bold]")
    console.print(f"Members: {result.members_created} new, {result.members_total} in total")
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"Console and clerk desk: {base}/console/ (sign in with a login above)")
    console.print(
        f"Member portal: {base}/portal/ (sign in with a member's phone; in the demo the SMS "
        f"codes show at {base}/portal/demo/sms)"
    )


@staff_app.command("create")
def staff_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator, clerk or analyst")],
    display_name: Annotated[str | None, typer.Option()] = None,
    password: Annotated[
        str | None, typer.Option(help="Read from PATRON_NEW_PASSWORD or prompted if omitted")
    ] = None,
) -> None:
    """Create a staff user."""
    from patron.auth import service
    from patron.auth.principal import Principal
    from patron.db import Database, utcnow
    from patron.errors import PatronError

    settings = _migrated_settings()
    pw = password or os.environ.get("PATRON_NEW_PASSWORD")
    if not pw:
        pw = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    db = Database(settings.database_url)
    try:
        with db.unit_of_work() as session:
            user = service.create_staff(
                session,
                Principal.system("cli"),
                username=username,
                display_name=display_name or username,
                role=role,
                password=pw,
                now=utcnow(),
            )
            console.print(f"created staff user {user.username} ({user.role}), id {user.id}")
    except PatronError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.message}")
        raise typer.Exit(1) from exc


@apikey_app.command("create")
def apikey_create(
    name: str,
    scope: Annotated[list[str], typer.Option("--scope", help="Repeat for each scope")],
) -> None:
    """Create an API key for an integration; the secret is printed once."""
    from patron.auth import service
    from patron.auth.principal import Principal
    from patron.db import Database, utcnow
    from patron.errors import PatronError

    settings = _migrated_settings()
    db = Database(settings.database_url)
    try:
        with db.unit_of_work() as session:
            created = service.create_api_key(
                session, Principal.system("cli"), name=name, scopes=scope, now=utcnow()
            )
            console.print(f"API key {created.key.prefix} for {name!r} (shown once):")
            console.print(created.secret, soft_wrap=True, highlight=False)
    except PatronError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.message}")
        raise typer.Exit(1) from exc


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=10, max=100_000, help="rows per transaction")] = 1000,
) -> None:
    """Re-encrypt every encrypted field under the current data key, in short batches while the
    service runs. First start every process with the new PATRON_DATA_KEY and the old key in
    PATRON_PREVIOUS_DATA_KEYS; when this reports nothing left, drop the old key."""
    from rich.progress import Progress

    from patron.db import Database
    from patron.privacy import keys as key_rotation

    settings = _migrated_settings()
    db = Database(settings.database_url)
    cipher = settings.cipher()
    with Progress(console=console) as progress:
        task = progress.add_task("re-encrypting", total=None)
        report = key_rotation.rotate(
            db, cipher, batch=batch, progress=lambda n: progress.advance(task, n)
        )
    console.print(
        f"re-encrypted: {report.members} member rows, {report.webhooks} webhook secrets; "
        f"left under an old key: {report.left}"
    )


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a fresh set of encryption keys as environment variables."""
    for name, value in generate_keys().items():
        sys.stdout.write(f"PATRON_{name.upper()}={value}\n")


class ImportKind(StrEnum):
    members = "members"
    stores = "stores"
    products = "products"
    orders = "orders"


@app.command("import")
def import_csv(
    kind: Annotated[ImportKind, typer.Argument(help="What the file holds")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    report: Annotated[
        Path | None, typer.Option(help="Per-row error report (default: FILE.errors.csv)")
    ] = None,
    channel: Annotated[
        str, typer.Option(help="Registration channel for member rows without one")
    ] = "partner",
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 2000,
    source: Annotated[str, typer.Option(help="Source system of imported orders")] = "import",
    points: Annotated[
        bool, typer.Option("--points/--no-points", help="Historical orders earn by the rules")
    ] = True,
) -> None:
    """Import a CSV export (UTF-8, UTF-8 with BOM, or GBK) row by row; bad rows are reported."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from patron.auth.principal import Principal
    from patron.db import Database, utcnow
    from patron.imports.importers import (
        MemberImporter,
        OrderImporter,
        ProductImporter,
        StoreImporter,
    )
    from patron.imports.runner import Importer, run_import
    from patron.kit.crypto import FieldCipher
    from patron.kit.timeutil import business_tz

    settings = _migrated_settings()
    keys = settings.keys()
    db = Database(settings.database_url)
    actor = Principal.system(f"import:{file.name}"[:120])
    now = utcnow()
    importer: Importer[Any]
    if kind is ImportKind.members:
        importer = MemberImporter(
            FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys()),
            actor,
            tz=business_tz(settings.business_timezone),
            now=now,
            default_channel=channel,
        )
    elif kind is ImportKind.orders:
        importer = OrderImporter(
            FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys()),
            actor,
            tz=business_tz(settings.business_timezone),
            now=now,
            source=source,
            earn=points,
        )
    elif kind is ImportKind.stores:
        importer = StoreImporter(actor, now=now)
    else:
        importer = ProductImporter(actor, now=now)
    report_path = report or file.with_name(file.name + ".errors.csv")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(f"importing {kind.value}", total=file.stat().st_size)
        result = run_import(
            db,
            importer,
            file,
            report_path=report_path,
            batch_size=batch_size,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    console.print(
        f"{result.imported} imported, {result.rejected} rejected of {result.rows} rows "
        f"({result.encoding}, {result.seconds:.1f} s)"
    )
    for e in result.first_errors[:10]:
        console.print(f"  row {e.row}: {e.field}: {e.reason}")
    if result.rejected:
        console.print(f"every rejected row is listed in {report_path}")
    sys.stdout.write(json.dumps(result.as_dict()) + "\n")


webhooks_app = typer.Typer(help="Webhook deliveries.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("deliver")
def webhooks_deliver(
    loop: Annotated[bool, typer.Option(help="Keep delivering every --interval seconds")] = False,
    interval: Annotated[float, typer.Option(min=1)] = 10.0,
) -> None:
    """Send due webhook deliveries (retries follow the backoff schedule)."""
    import time

    from patron.db import Database, utcnow
    from patron.kit.crypto import FieldCipher
    from patron.webhooks.service import deliver_due

    settings = _migrated_settings()
    keys = settings.keys()
    db = Database(settings.database_url)
    cipher = FieldCipher(keys["data_key"], keys["index_key"], settings.previous_keys())
    while True:
        r = deliver_due(db, cipher, utcnow(), allowed=settings.webhook_allowed_networks)
        console.print(f"delivered {r.delivered}, failed {r.failed} (will retry), dead {r.dead}")
        if not loop:
            return
        time.sleep(interval)


from patron.jobs.cli import jobs_app, messages_app  # noqa: E402

app.add_typer(jobs_app, name="jobs")
app.add_typer(messages_app, name="messages")


@app.command()
def check() -> None:
    """Reconcile every domain's invariants over the whole database; exit 1 naming violations."""
    from patron.checks import run_all
    from patron.db import Database, utcnow
    from patron.ops import status

    settings = _migrated_settings()
    db = Database(settings.database_url)
    started = time.perf_counter()
    with console.status("checking every ledger…"), db.unit_of_work() as session:
        violations = run_all(session, now=utcnow())
    status.record(
        settings.status_dir,
        "check",
        ok=not violations,
        seconds=time.perf_counter() - started,
        violations=len(violations),
    )
    if violations:
        for v in violations:
            err.print(f"[red]violation:[/red] {v}")
        err.print(f"{len(violations)} violation(s)")
        raise typer.Exit(1)
    console.print("consistent: every invariant holds")


# ledger commands:

# operations commands:
from patron.ops.cli import backup_app, doctor_command, restore_command  # noqa: E402

app.add_typer(backup_app, name="backup")
app.command("restore")(restore_command)
app.command("doctor")(doctor_command)


analytics_app = typer.Typer(help="Analytics models.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")


@analytics_app.command("evaluate")
def analytics_evaluate(
    write_docs: Annotated[
        Path | None,
        typer.Option(
            "--write-docs",
            help="also write the holdout metrics into this Markdown file, between its "
            "'analytics-evaluate' start and end comments (e.g. docs/analytics.md)",
        ),
    ] = None,
) -> None:
    """Fit the purchase models on history before the holdout and compare their predictions
    with the holdout's purchases, by calibration frequency (settings section `analytics`)."""
    from patron.analytics import evaluation_doc
    from patron.analytics.report import print_evaluation
    from patron.analytics.scores import evaluate
    from patron.db import Database, utcnow
    from patron.kit.timeutil import business_tz
    from patron.ops.replica import replica_of, snapshot

    settings = _migrated_settings()
    if write_docs is not None:
        # Checked first, so that a wrong path costs no model fitting.
        try:
            evaluation_doc.replace_section(write_docs.read_text(encoding="utf-8"), "")
        except (OSError, evaluation_doc.MarkersMissing) as e:
            err.print(f"[red]cannot write the holdout metrics into {write_docs}[/]: {e}")
            raise typer.Exit(1) from None
    db = Database(settings.database_url)
    with (
        console.status("fitting and checking the models…"),
        db.unit_of_work() as session,
        snapshot(replica_of(settings)) as reads,
    ):
        tz = business_tz(settings.business_timezone)
        result = evaluate(session, now=utcnow(), tz=tz, reads=reads)
    print_evaluation(console, result)
    if write_docs is not None:
        changed = evaluation_doc.write(write_docs, result)
        console.print(
            f"holdout metrics written into {write_docs}"
            if changed
            else f"{write_docs} already holds these holdout metrics",
            soft_wrap=True,  # a path is not cut in two on a narrow terminal
        )


@analytics_app.command("liability")
def analytics_liability() -> None:
    """Points liability and breakage: outstanding points valued at the checkout rate, by tier
    and lot age, and the monthly finance report (earned, redeemed, expired, outstanding)."""
    from patron.analytics.finance import liability
    from patron.analytics.report import print_liability
    from patron.db import Database, utcnow
    from patron.kit.timeutil import business_tz
    from patron.ops.replica import read_only, replica_of

    settings = _migrated_settings()
    db = replica_of(settings) or Database(settings.database_url)
    with read_only(db) as session:
        tz = business_tz(settings.business_timezone)
        result = liability(session, now=utcnow(), tz=tz)
    print_liability(console, result)


@analytics_app.command("export")
def analytics_export(
    out: Annotated[Path, typer.Argument(help="CSV file to write")],
    anonymized: Annotated[
        bool, typer.Option(help="Pseudonymous ids instead of member numbers")
    ] = False,
) -> None:
    """Write the member scores as CSV (streamed; no contact data in either mode)."""
    from patron.analytics.export import scores_csv
    from patron.db import Database
    from patron.ops.replica import read_only, replica_of

    settings = _migrated_settings()
    key = settings.keys()["index_key"] if anonymized else None
    db = replica_of(settings) or Database(settings.database_url)
    with read_only(db) as session, out.open("w", encoding="utf-8", newline="") as f:
        for chunk in scores_csv(session, key=key):
            f.write(chunk)
    console.print(f"member scores written to {out}")


docs_app = typer.Typer(help="Documents generated from the code.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("errors")
def docs_errors(
    check: Annotated[
        bool, typer.Option("--check", help="only compare; exit 1 if docs/api.md is out of date")
    ] = False,
    doc: Annotated[Path | None, typer.Option(help="the document (default: docs/api.md)")] = None,
) -> None:
    """Write the error catalogue of docs/api.md from the error codes the code raises."""
    from patron import error_catalogue

    current, found = error_catalogue.write(doc, check=check)
    for site in found.unresolved:
        err.print(f"[red]error code not readable[/] (raise it with a literal code): {site}")
    if check and not current:
        err.print("[red]docs/api.md: error catalogue out of date[/]; run `patron docs errors`")
    elif not check:
        console.print(f"{len(found.entries)} error codes written to the catalogue.")
    if found.unresolved or (check and not current):
        raise typer.Exit(1)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
