"""Drive an import: parse rows, write them in batches (one transaction each), report bad rows.

Memory stays flat: rows stream from the file, errors stream to the report file, and only one
batch is held at a time.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.orm import Session

from patron.db import Database
from patron.imports.reader import CsvRow, CsvSource
from patron.kit import csvsafe

T = TypeVar("T")


class RowProblem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass
class RowError:
    row: int
    field: str
    reason: str


@dataclass
class Parsed(Generic[T]):
    row: int
    item: T


class Importer(Protocol[T]):
    kind: str

    def parse(self, row: CsvRow) -> T: ...

    def write_batch(self, session: Session, batch: list[Parsed[T]]) -> list[RowError]:
        """Insert the rows it accepts; return an error for each row it refuses."""
        ...


@dataclass
class ImportReport:
    kind: str
    encoding: str
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    seconds: float = 0.0
    report_path: Path | None = None
    first_errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "encoding": self.encoding,
            "rows": self.rows,
            "imported": self.imported,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "report": str(self.report_path) if self.report_path else None,
        }


def run_import(
    db: Database,
    importer: Importer[Any],
    path: Path,
    *,
    report_path: Path,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    source = CsvSource(path)
    report = ImportReport(kind=importer.kind, encoding=source.encoding, report_path=report_path)
    start = time.perf_counter()
    with report_path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["row", "field", "reason"])

        def reject(err: RowError) -> None:
            report.rejected += 1
            # Reasons quote the file's own cells and headers: neutralise formula-like text.
            writer.writerow(csvsafe.row([err.row, err.field, err.reason]))
            if len(report.first_errors) < 20:
                report.first_errors.append(err)

        batch: list[Parsed[Any]] = []

        def flush() -> None:
            if not batch:
                return
            errors = _write(db, importer, batch)
            for err in errors:
                reject(err)
            report.imported += len(batch) - len(errors)
            batch.clear()
            if progress:
                progress(source.position, source.size)

        group_by: str | None = getattr(importer, "group_by", None)
        records = _grouped(source.rows(), group_by) if group_by else source.rows()
        for row in records:
            report.rows += len(row.lines) if isinstance(row, GroupedRow) else 1
            if row.undecodable:
                reject(RowError(row.number, "*", "bytes that are neither UTF-8 nor GBK"))
                continue
            try:
                batch.append(Parsed(row.number, importer.parse(row)))
            except RowProblem as problem:
                reject(RowError(row.number, problem.field, problem.reason))
            if len(batch) >= batch_size:
                flush()
        flush()
    if progress:
        progress(source.size, source.size)
    report.seconds = time.perf_counter() - start
    return report


class GroupedRow(CsvRow):
    """Consecutive rows sharing a key (the lines of one order): ``lines`` holds them all."""

    def __init__(self, rows: list[CsvRow]) -> None:
        super().__init__(rows[0].number, rows[0].values, any(r.undecodable for r in rows))
        self.lines = rows


def _grouped(rows: Iterator[CsvRow], key: str) -> Iterator[CsvRow]:
    """Lines of one order must be consecutive (as exports write them). A later block with the
    same key is a second record, refused by the order's uniqueness, never merged."""
    current: list[CsvRow] = []
    for row in rows:
        value = row.values.get(key, "")
        if current and value != current[0].values.get(key, ""):
            yield GroupedRow(current)
            current = []
        current.append(row)
    if current:
        yield GroupedRow(current)


def _write(db: Database, importer: Importer[Any], batch: list[Parsed[Any]]) -> list[RowError]:
    try:
        with db.unit_of_work() as session:
            return importer.write_batch(session, batch)
    except Exception:
        if len(batch) == 1:
            return [RowError(batch[0].row, "*", "could not be written (conflicting data)")]
    # A conflict the batch checks could not foresee (e.g. a concurrent writer): isolate it by
    # writing row by row, each in its own transaction.
    errors: list[RowError] = []
    for item in batch:
        errors.extend(_write(db, importer, [item]))
    return errors
