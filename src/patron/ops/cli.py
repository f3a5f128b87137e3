"""``patron backup``, ``patron backup drill``, ``patron restore`` and ``patron doctor``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

backup_app = typer.Typer(
    help="Back up the database; `patron backup drill` proves the backup restores.",
    invoke_without_command=True,
)
console = Console()
err = Console(stderr=True)


@backup_app.callback()
def backup_now(
    ctx: typer.Context,
    to: Annotated[
        Path | None, typer.Option(help="Directory for the backup file (PATRON_BACKUP_DIR)")
    ] = None,
) -> None:
    """Write a backup file (pg_dump custom format, or a SQLite snapshot) and print its path."""
    if ctx.invoked_subcommand is not None:
        return
    from patron.cli import _safe_url, _settings
    from patron.ops import backup as ops_backup
    from patron.ops import status

    settings = _settings()
    start = time.perf_counter()
    try:
        with console.status(f"backing up {_safe_url(settings.database_url)}…"):
            result = ops_backup.backup(settings.database_url, to or settings.backup_dir)
    except ops_backup.BackupError as exc:
        status.record(settings.status_dir, "backup", ok=False, seconds=time.perf_counter() - start)
        err.print(f"[red]backup failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    status.record(settings.status_dir, "backup", ok=True, seconds=result.seconds)
    console.print(
        f"backup written: {result.path} ({result.size_bytes / 1_048_576:.1f} MB, "
        f"{result.seconds:.1f} s). Keep the encryption keys apart from it: without "
        "PATRON_DATA_KEY the personal data in it cannot be read."
    )


@backup_app.command("drill")
def backup_drill(
    file: Annotated[
        Path | None, typer.Option(help="Backup to restore (default: the latest in --from)")
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--from", help="Directory of backups (PATRON_BACKUP_DIR)")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Take a backup first and drill that one")
    ] = False,
    jobs: Annotated[int, typer.Option(min=1, max=32, help="pg_restore parallel jobs")] = 2,
) -> None:
    """Restore the latest backup into a scratch database, run `patron check` on it, compare
    row counts and balances with the source, print the time taken; exit 1 if anything is off."""
    from patron.cli import _migrated_settings
    from patron.ops import backup as ops_backup
    from patron.ops import status

    settings = _migrated_settings()
    backup_dir = source or settings.backup_dir
    start = time.perf_counter()
    try:
        if fresh:
            file = ops_backup.backup(settings.database_url, backup_dir).path
        chosen = file or ops_backup.latest_backup(backup_dir)
        if chosen is None:
            err.print(f"[red]no backup found in {backup_dir}[/red]: run `patron backup` first")
            raise typer.Exit(1)
        with console.status("restore drill…") as spinner:
            report = ops_backup.drill(
                settings.database_url,
                chosen,
                jobs=jobs,
                progress=lambda step: spinner.update(f"restore drill: {step}…"),
            )
    except ops_backup.BackupError as exc:
        status.record(settings.status_dir, "drill", ok=False, seconds=time.perf_counter() - start)
        err.print(f"[red]drill failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    status.record(
        settings.status_dir,
        "drill",
        ok=report.ok,
        seconds=report.total_seconds,
        violations=len(report.violations),
    )
    table = Table(title=f"Restore drill of {report.backup.name}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_row("restore", f"{report.restore_seconds:.1f}")
    table.add_row("patron check", f"{report.check_seconds:.1f}")
    table.add_row("compare with the source", f"{report.compare_seconds:.1f}")
    table.add_row("total", f"{report.total_seconds:.1f}")
    console.print(table)
    for v in report.violations:
        err.print(f"[red]violation:[/red] {v}")
    for d in report.differences:
        err.print(f"[yellow]differs:[/yellow] {d}")
    if report.differences:
        err.print(
            "rows written after the backup was taken also show as differences: drill a fresh "
            "backup (--fresh) at a quiet time to compare exactly"
        )
    summary = {
        "backup": report.backup.name,
        "restore_s": round(report.restore_seconds, 2),
        "check_s": round(report.check_seconds, 2),
        "compare_s": round(report.compare_seconds, 2),
        "total_s": round(report.total_seconds, 2),
        "violations": len(report.violations),
        "differences": len(report.differences),
        "members": report.rows.get("members", (0, 0))[1],
        "orders": report.rows.get("orders", (0, 0))[1],
        "points_postings": report.rows.get("points_postings", (0, 0))[1],
        "ok": report.ok,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"the backup restores and is consistent ({report.total_seconds:.1f} s)")


def restore_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    database_url: Annotated[
        str,
        typer.Option(
            "--into",
            help="Empty database to restore into (a new PostgreSQL database or a new SQLite "
            "file), e.g. postgresql://patron@db/patron_restored or sqlite:///var/restored.db",
        ),
    ],
    jobs: Annotated[int, typer.Option(min=1, max=32, help="pg_restore parallel jobs")] = 2,
) -> None:
    """Restore a backup into an empty database; then point PATRON_DATABASE_URL at it, run
    `patron migrate` (if the backup is from an older release) and `patron check`."""
    from patron.cli import _safe_url
    from patron.ops import backup as ops_backup

    try:
        with console.status(f"restoring into {_safe_url(database_url)}…"):
            seconds = ops_backup.restore(file, database_url, jobs=jobs)
    except ops_backup.BackupError as exc:
        err.print(f"[red]restore failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"restored {file.name} into {_safe_url(database_url)} in {seconds:.1f} s; next: "
        "`patron migrate`, `patron check`, then switch PATRON_DATABASE_URL and restart"
    )


def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON")] = False,
) -> None:
    """Check this deployment (keys, database, schema, clock, timezone, message broker, disk,
    settings) and say what to fix. Exit 1 if anything must be fixed, 0 when only warnings remain."""
    from patron.config import ConfigError, get_settings
    from patron.ops import doctor

    try:
        settings = get_settings()
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    findings = doctor.run(settings)
    if as_json:
        sys.stdout.write(json.dumps([f.as_dict() for f in findings], ensure_ascii=False) + "\n")
    else:
        style = {"error": "red", "warning": "yellow", "ok": "green"}
        for f in findings:
            console.print(f"[{style[f.level]}]{f.level:7}[/] {f.check}: {f.message}")
            if f.fix:
                console.print(f"        fix: {f.fix}")
    if any(f.level == "error" for f in findings):
        raise typer.Exit(1)
