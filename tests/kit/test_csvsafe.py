"""CSV cells that a spreadsheet app would read as formulas are neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.kit import csvsafe


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x","click")', '\'=HYPERLINK("http://x","click")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("-5", "'-5"),  # text that looks like a number is still text
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("＝1+1", "'＝1+1"),
        ("王芳", "王芳"),
        ("a=b", "a=b"),
        ("", ""),
        (-500, -500),  # a negative number in a numeric column stays a number
        (0, 0),
        (True, True),
        (None, None),
    ],
)
def test_cell(value, written):
    assert csvsafe.cell(value) == written


@given(st.text())
def test_no_text_cell_starts_like_a_formula(text):
    out = csvsafe.cell(text)
    assert isinstance(out, str)
    assert not out or out[0] not in csvsafe.FORMULA_STARTS
    assert out in (text, "'" + text)


def test_rows_round_trip_through_csv():
    buf = io.StringIO()
    csv.writer(buf).writerow(csvsafe.row([7, "=1+1", -3]))
    assert next(csv.reader(io.StringIO(buf.getvalue()))) == ["7", "'=1+1", "-3"]
    assert csvsafe.record({"a": "@x", "b": -1}) == {"a": "'@x", "b": -1}
