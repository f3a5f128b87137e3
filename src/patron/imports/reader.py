"""Read CSV exports in UTF-8 (with or without BOM) or GBK/GB18030, streaming.

The encoding is sniffed from the first megabyte. Bytes that still do not decode are kept as
surrogate escapes, and the row that holds them is reported instead of being imported garbled.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SNIFF_BYTES = 1 << 20


def detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff boundary is still UTF-8.
        if exc.start < len(head) - 4:
            return "gb18030"
    return "utf-8"


@dataclass
class CsvRow:
    number: int  # 1-based data row number (the header is row 0)
    values: dict[str, str]
    undecodable: bool


class CsvSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        with path.open("rb") as fh:
            self.encoding = detect_encoding(fh.read(SNIFF_BYTES))
        self._raw: BinaryIO | None = None

    @property
    def position(self) -> int:
        """Bytes consumed so far, for progress bars."""
        return self._raw.tell() if self._raw is not None else 0

    def rows(self) -> Iterator[CsvRow]:
        with self.path.open("rb") as raw:
            self._raw = raw
            text = io.TextIOWrapper(
                raw, encoding=self.encoding, errors="surrogateescape", newline=""
            )
            reader = csv.reader(text)
            try:
                header = next(reader)
            except StopIteration:
                return
            names = [h.strip().lower() for h in header]
            for n, record in enumerate(reader, start=1):
                if not any(cell.strip() for cell in record):
                    continue
                values = {names[i]: record[i].strip() for i in range(min(len(names), len(record)))}
                bad = any(_has_surrogates(v) for v in record)
                yield CsvRow(n, values, bad)
            self._raw = None


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)
