"""Cells for CSV files a person opens in a spreadsheet app (formula injection, CWE-1236).

A text cell that starts with ``=``, ``+``, ``-``, ``@`` (or their full-width forms, which some
spreadsheet apps accept under a Chinese input method), a tab or a carriage return can be read
as a formula. Such text gets a leading apostrophe, which spreadsheet apps hide and which shows
a reader that the value was text. The decision is by the value's type, not by its look: an
``int`` (points, fen, counts — negative ones included) is written as a number, while text that
merely looks like a negative number (``"-5"`` typed into a name) is still neutralised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

FORMULA_STARTS: Final = frozenset("=+-@\t\r\n＝＋－＠")


def cell(value: object) -> object:
    """``value`` as it should go into a CSV cell."""
    if value is None or isinstance(value, bool | int):
        return value
    text = str(value)
    if text and text[0] in FORMULA_STARTS:
        return "'" + text
    return text


def row(values: Iterable[object]) -> list[object]:
    return [cell(v) for v in values]


def record(values: Mapping[str, object]) -> dict[str, object]:
    """A ``csv.DictWriter`` row with every cell neutralised (the keys are the fixed header)."""
    return {k: cell(v) for k, v in values.items()}
