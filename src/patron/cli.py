"""The ``patron`` command: serve, migrate, demo, staff, API keys (and more as domains land)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

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
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Serve the API (and, as they land, the console and portal)."""
    import uvicorn

    settings = _settings()
    if migrate_first:
        # Migrate before starting workers: several workers racing to create tables would crash.
        from patron.migrate import upgrade

        upgrade(settings.database_url)
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
    )


@app.command()
def demo(
    members: Annotated[int, typer.Option(min=0, max=5_000_000, help="Members to create")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data")] = 2026,
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
    cipher = FieldCipher(keys["data_key"], keys["index_key"])
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
    table = Table(title="Demo staff logins (demo only)")
    table.add_column("username")
    table.add_column("password")
    table.add_column("role")
    for row in result.staff:
        table.add_row(*row)
    console.print(table)
    console.print(f"Demo API key (X-API-Key): [bold]{result.api_key}[/bold]")
    console.print(f"Members: {result.members_created} new, {result.members_total} in total")


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

    settings = _settings()
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

    settings = _settings()
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


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a fresh set of encryption keys as environment variables."""
    for name, value in generate_keys().items():
        sys.stdout.write(f"PATRON_{name.upper()}={value}\n")


# ledger commands:


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
