"""Count the SQL statements a block of code sends to the database (a budget guard).

``executemany`` counts once: it is one statement sent with many parameter sets. A ``COPY``
sent through the driver's connection counts once too: ``patron.db.copy_in`` (the one way
Patron sends a COPY) announces it to the same ``before_cursor_execute`` listeners.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass
class StatementLog:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        return "\n".join(f"{i:3d} {s[:160]}" for i, s in enumerate(self.statements, 1))


@contextmanager
def count_statements(engine: Engine) -> Iterator[StatementLog]:
    log = StatementLog()

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        log.statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", spy)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", spy)
