"""The error catalogue in docs/api.md is generated from the code and kept equal to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from patron import error_catalogue
from patron.error_catalogue import END, START

DOC = Path(__file__).parents[1] / "docs" / "api.md"


@pytest.fixture(scope="module")
def found() -> error_catalogue.Scan:
    return error_catalogue.scan()


def _documented_codes(doc: str) -> set[str]:
    table = doc[doc.index(START) : doc.index(END)]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.MULTILINE))


def test_the_catalogue_lists_exactly_the_codes_the_code_raises(found):
    documented = _documented_codes(DOC.read_text(encoding="utf-8"))
    missing = set(found.entries) - documented
    gone = documented - set(found.entries)
    assert not missing, f"codes missing from docs/api.md (run `patron docs errors`): {missing}"
    assert not gone, f"docs/api.md lists codes nothing raises (run `patron docs errors`): {gone}"
    current, _ = error_catalogue.write(DOC, check=True, found=found)
    assert current, "statuses or messages changed: run `patron docs errors`"


def test_every_code_is_readable_from_the_source(found):
    assert found.unresolved == []


def test_codes_a_pos_meets_are_in_the_catalogue_with_their_status(found):
    entries = found.entries
    expected = {
        "payments_mismatch": {422},
        "unknown_sku": {422},
        "return_before_order": {422},
        "idempotency_conflict": {409},
        "order_not_found": {404},
        "quote_mismatch": {409},
        "insufficient_points": {409},
        "points_share_exceeded": {422},
        "validation_error": {422},
        "payload_too_large": {413},
        "not_authenticated": {401},
        "internal_error": {500},
    }
    assert {code: entries[code].statuses for code in expected} == expected
    # One rule, one code: the share points may pay is the same error at checkout and on orders.
    assert "points_over_limit" not in entries
    assert entries["points_share_exceeded"].areas == {"orders"}


def test_the_check_fails_when_the_document_and_the_code_disagree(tmp_path, found):
    doc = DOC.read_text(encoding="utf-8")
    row = next(ln for ln in doc.splitlines() if ln.startswith("| `payments_mismatch` |"))
    for changed in (
        doc.replace(row + "\n", ""),  # a code the code raises is missing
        doc.replace(row, row + "\n| `no_longer_raised` | 409 | orders | Gone. |"),
    ):
        path = tmp_path / "api.md"
        path.write_text(changed, encoding="utf-8")
        current, _ = error_catalogue.write(path, check=True, found=found)
        assert not current
        assert path.read_text(encoding="utf-8") == changed  # --check writes nothing
        error_catalogue.write(path, found=found)
        assert path.read_text(encoding="utf-8") == doc


def test_the_scanner_reads_every_way_a_code_is_raised(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "shop").mkdir(parents=True)
    (pkg / "errors.py").write_text(
        "class PatronError(Exception):\n    status = 400\n"
        "class Invalid(PatronError):\n    status = 422\n"
        "class Conflict(PatronError):\n    status = 409\n"
    )
    (pkg / "shop" / "service.py").write_text(
        "from pkg.errors import Conflict, Invalid, PatronError\n"
        "MESSAGE = 'A constant message.'\n"
        "class Sold(Conflict):\n"
        "    def __init__(self, n):\n"
        "        super().__init__('sold_out', f'only {n} left')\n"
        "def _refuse(code, message):\n"
        "    return Invalid(code, message)\n"
        "def f(x, code):\n"
        "    if x == 1:\n"
        "        raise Invalid('brand_new', f'Line {x} is wrong.')\n"
        "    if x == 2:\n"
        "        raise Invalid('moved', MESSAGE, status=409)\n"
        "    if x == 3:\n"
        "        raise _refuse('via_helper', 'Helped.')\n"
        "    if x == 4:\n"
        "        raise Sold(x)\n"
        "    if x == 5:\n"
        "        raise PatronError(code, 'dynamic')\n"
        "    return _error(429, 'slow_down', 'Too fast.')\n"
        "CODES = {401: 'who_are_you', 405: 'wrong_method'}\n"
    )
    monkeypatch.setattr(error_catalogue, "DYNAMIC", {})
    found = error_catalogue.scan(pkg)
    got = {c: (e.statuses, e.areas, e.meaning) for c, e in found.entries.items()}
    assert got == {
        "brand_new": ({422}, {"shop"}, "Line … is wrong."),
        "moved": ({409}, {"shop"}, "A constant message."),
        "via_helper": ({422}, {"shop"}, "Helped."),
        "sold_out": ({409}, {"shop"}, "only … left"),
        "slow_down": ({429}, {"shop"}, "Too fast."),
        "who_are_you": ({401}, {"shop"}, ""),
        "wrong_method": ({405}, {"shop"}, ""),
    }
    assert len(found.unresolved) == 1
    assert found.unresolved[0].startswith("shop/service.py:18: PatronError(code")


def test_the_command_checks_and_writes(tmp_path):
    from typer.testing import CliRunner

    from patron.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["docs", "errors", "--check"]).exit_code == 0
    stale = tmp_path / "api.md"
    doc = DOC.read_text(encoding="utf-8")
    stale.write_text(doc.replace("| `payments_mismatch` |", "| `payments_gone` |"), "utf-8")
    assert runner.invoke(app, ["docs", "errors", "--check", "--doc", str(stale)]).exit_code == 1
    assert runner.invoke(app, ["docs", "errors", "--doc", str(stale)]).exit_code == 0
    assert stale.read_text(encoding="utf-8") == doc
