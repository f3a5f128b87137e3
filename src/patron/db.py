"""Engine, sessions and the unit of work: the one place in Patron that commits.

SQLite (the embedded default) and PostgreSQL go through the same code; the differences are
confined to connection setup here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from patron.errors import Invalid
from patron.kit.buckets import bucket
from patron.observability import NUL_MESSAGE

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


#: execution option of a connection whose transaction never writes (``ops.replica.read_only``)
READ_ONLY = "patron_read_only"


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            # A request's dependencies and endpoint may run on different worker threads.
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the sqlite3 module (which defers BEGIN and breaks
            # SAVEPOINT) and begin every transaction ourselves, below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # control groups held out in SQL (kit.buckets.bucket_sql)
            dbapi_conn.create_function("patron_bucket", 2, bucket, deterministic=True)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: transactions run one at a time, so a
            # read-then-write can never fail half-way on a lock upgrade. SQLite is the
            # single-process embedded mode; PostgreSQL is the concurrent one. A transaction
            # that only reads (READ_ONLY: an export streamed for minutes) begins deferred: in
            # WAL mode it reads one snapshot and blocks no writer.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True
    )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


@event.listens_for(Session, "before_flush")
def _refuse_nul_characters(session: Session, _ctx: Any, _instances: Any) -> None:
    """PostgreSQL cannot store a NUL character in text or JSON, SQLite can: refuse it on both
    before anything is written, as bad input (422) rather than a database error (500)."""
    for obj in (*session.new, *session.dirty):
        # the instance dict holds exactly the loaded attribute values: cheaper than the ORM's
        # attribute state (this runs on every flush)
        for key, value in vars(obj).items():
            if not key.startswith("_") and _holds_nul(value):
                raise Invalid("invalid_character", NUL_MESSAGE, details={"field": key})


class UnitOfWork:
    """One transaction. Services flush; only ``commit`` here makes their work durable."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def close(self) -> None:
        self.session.close()


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, pool_size=pool_size, echo=echo)
        self._factory = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self._factory()

    def begin(self) -> UnitOfWork:
        return UnitOfWork(self._factory())

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        uow = self.begin()
        try:
            yield uow.session
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()

    def dispose(self) -> None:
        self.engine.dispose()


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")


def advisory_lock(session: Session, key: str) -> None:
    """Serialise transactions working on the same natural key (e.g. one external order id)
    until commit. PostgreSQL: a transaction-scoped advisory lock; SQLite transactions are
    already serial (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_ADVISORY_LOCK, {"k": key})


def one_of(session: Session, column: Any, values: Iterable[Any]) -> Any:
    """``column IN (values)`` for a batch's hundreds of values. On PostgreSQL the values go as
    one array parameter (``= ANY``): a list of placeholders costs more to render, send and
    parse than the lookup itself, and every length is a new statement to plan."""
    wanted = sorted(set(values))
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(wanted)
    element = BigInteger() if isinstance(column.type, Integer) else Text()
    return column == any_(cast(bindparam(None, wanted, type_=ARRAY(element)), ARRAY(element)))


@contextmanager
def copy_in(session: Session, table: str, columns: Iterable[str]) -> Iterator[Any]:
    """``COPY table (columns) FROM STDIN`` on the session's connection (PostgreSQL, psycopg):
    yields the driver's copy object (``write_row``). Every COPY goes through here, so the
    engine's ``before_cursor_execute`` listeners (statement counting, tracing) see it as the
    one statement it is, although it bypasses SQLAlchemy's cursor."""
    conn = session.connection()
    raw = conn.connection.driver_connection
    assert raw is not None
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cur:
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, cur, sql, (), None, False)
        with cur.copy(sql) as copy:
            yield copy
