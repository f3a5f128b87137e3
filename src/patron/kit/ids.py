"""Human-friendly identifiers: member card numbers with a Luhn check digit."""

from __future__ import annotations

import secrets


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_member_no() -> str:
    """Ten digits, first one 1-9, last one a Luhn check digit (typos are caught at the till)."""
    body = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(8))
    return body + luhn_check_digit(body)


def format_member_no(member_no: str) -> str:
    """``1234567890`` → ``1234 5678 90`` for cards and receipts."""
    return " ".join(member_no[i : i + 4] for i in range(0, len(member_no), 4))
