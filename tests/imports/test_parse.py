from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.imports.parse import ParseError, parse_bool, parse_date, parse_datetime, parse_fen
from patron.imports.reader import detect_encoding

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "fen"),
    [("199", 19900), ("199.5", 19950), ("1,299.50", 129950), ("¥0.01", 1), ("12元", 1200)],
)
def test_parse_fen(text, fen):
    assert parse_fen(text) == fen


@pytest.mark.parametrize("text", ["1.999", "abc", "", "1e3", "1.2.3", "--1"])
def test_parse_fen_refuses(text):
    with pytest.raises(ParseError):
        parse_fen(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_parse_fen_is_exact(fen):
    assert parse_fen(f"{fen // 100}.{fen % 100:02d}") == fen


def test_dates_and_times():
    assert parse_date("2024/05/01") == date(2024, 5, 1)
    assert parse_date("20240501") == date(2024, 5, 1)
    with pytest.raises(ParseError):
        parse_date("2024-13-01")
    # Naive POS timestamps are business-local time.
    assert parse_datetime("2024-05-01 08:30:00", SH) == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    assert parse_datetime("2024-05-01T08:30:00+00:00", SH).hour == 8


def test_bools():
    assert parse_bool("是") is True
    assert parse_bool("0") is False
    with pytest.raises(ParseError):
        parse_bool("maybe")


def test_detect_encoding():
    text = "姓名,手机\n张伟,13800138000\n"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + text.encode("utf-8")) == "utf-8-sig"
    assert detect_encoding(text.encode("gbk")) == "gb18030"
    # A character cut at the sniffing boundary does not make UTF-8 look like GBK.
    assert detect_encoding(text.encode("utf-8")[:4]) == "utf-8"


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01",
        "0001.01.01",
        "0001-01-01 00:00:00",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-23:59",
        "1900-01-01 08:00:00",
        "2200-01-01",
    ],
)
def test_datetimes_outside_the_accepted_range_are_row_errors(text):
    # year 1 or 9999 overflowed on conversion (OverflowError ended the whole import)
    with pytest.raises(ParseError, match="between 2000-01-01 and 2100-01-01"):
        parse_datetime(text, SH)
