"""`patron analytics evaluate --write-docs`: the holdout metrics replace the marked section of
a Markdown file and nothing else; writing twice gives the same file; a file without the
markers is refused before anything is fitted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from patron.analytics import evaluation_doc
from patron.analytics import scores as svc
from patron.cli import app
from patron.config import get_settings
from patron.db import Database
from tests.analytics.history import add_members, add_orders, simulate_fading
from tests.analytics.test_cli import env  # noqa: F401  (fixture)
from tests.analytics.test_scores import TODAY
from tests.conftest import START

SH = ZoneInfo("Asia/Shanghai")
BEFORE = "# Analytics\n\nHand-written text.\n\n"
AFTER = "\n\n## Export\n\nMore hand-written text, with a trailing space \n"


def _document(inside: str = "old numbers\n") -> str:
    return f"{BEFORE}{evaluation_doc.START}\n{inside}{evaluation_doc.END}{AFTER}"


@pytest.fixture
def evaluation(database):
    with database.unit_of_work() as s:
        ids = add_members(s, 400, at=START - timedelta(days=800))
        add_orders(s, simulate_fading(ids, until=TODAY))
        return svc.evaluate(s, now=START, tz=SH)


def test_the_section_holds_every_table(evaluation):
    text = evaluation_doc.markdown(evaluation)
    assert text.startswith("Evaluated on 2026-03-01: fitted on purchases up to 2025-09-02")
    assert "**BG/NBD** (r = " in text and "**Pareto/NBD** (r = " in text
    # a table per model that fitted; a model that did not (Pareto/NBD's optimiser can stop
    # short on this small history) is named with the reason instead of numbers
    fitted = [c for c in evaluation.checks if c.holdout is not None]
    assert evaluation.checks[0].holdout is not None  # BG/NBD fits this history
    header = "| repeat purchases (calibration) | members | predicted | actual |"
    assert text.count(header) == len(fitted)
    assert text.count(": not usable — ") == len(evaluation.checks) - len(fitted)
    bg = evaluation.checks[0].holdout.rows
    assert f"| {bg[0].frequency} | {bg[0].customers:,} | {bg[0].predicted:.3f} |" in text
    assert f"| 7+ | {bg[-1].customers:,} | {bg[-1].predicted:.3f} |" in text
    ch = evaluation.churn
    assert ch.beats_baseline
    assert (
        f"AUC {ch.auc:.3f} against {ch.baseline_auc:.3f} for days since the last purchase "
        f"alone, a difference of {ch.margin:+.3f}"
    ) in text
    assert "the model beats it and is used" in text
    assert text.count("\n| 10 | ") == 1  # the lift table's last tenth
    nx = evaluation.next_purchase
    assert f"| median interval (baseline) | {nx.baseline_mae:.1f} |" in text
    # No order lines in this history: the recommendations say so instead of a table.
    assert "precision@10" not in text
    assert "- recommendations: no member with purchases before" in text


def test_writing_replaces_only_the_section_and_twice_is_once(tmp_path, evaluation):
    doc = tmp_path / "analytics.md"
    doc.write_text(_document(), encoding="utf-8")
    assert evaluation_doc.write(doc, evaluation) is True
    once = doc.read_text(encoding="utf-8")
    assert once.startswith(BEFORE + evaluation_doc.START + "\n\nEvaluated on 2026-03-01")
    assert once.endswith(evaluation_doc.END + AFTER)
    assert "old numbers" not in once
    inside = once[len(BEFORE) : -len(AFTER)]
    assert inside == (
        f"{evaluation_doc.START}\n\n{evaluation_doc.markdown(evaluation)}\n{evaluation_doc.END}"
    )
    assert evaluation_doc.write(doc, evaluation) is False
    assert doc.read_text(encoding="utf-8") == once


@pytest.mark.parametrize(
    "text", ["no markers at all\n", f"{evaluation_doc.END}\nswapped\n{evaluation_doc.START}\n"]
)
def test_a_document_without_the_markers_is_refused(text):
    with pytest.raises(evaluation_doc.MarkersMissing, match="has no section to replace"):
        evaluation_doc.replace_section(text, "x")


def test_the_command_writes_the_section(env):  # noqa: F811
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    today = datetime.now(UTC).astimezone(SH).date()
    db = Database(get_settings().database_url)
    with db.unit_of_work() as s:
        ids = add_members(s, 150, at=datetime.now(UTC) - timedelta(days=800))
        add_orders(s, simulate_fading(ids, until=today))
    db.dispose()
    plain = env.parent / "plain.md"
    plain.write_text("nothing marked\n")
    r = runner.invoke(app, ["analytics", "evaluate", "--write-docs", str(plain)])
    assert r.exit_code == 1
    assert "has no section to replace" in r.output
    assert "BG/NBD" not in r.output  # refused before fitting anything
    assert plain.read_text() == "nothing marked\n"
    doc = env.parent / "analytics.md"
    doc.write_text(_document(), encoding="utf-8")
    r = runner.invoke(app, ["analytics", "evaluate", "--write-docs", str(doc)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert f"holdout metrics written into {doc}" in " ".join(r.output.split())
    written = doc.read_text(encoding="utf-8")
    assert f"Evaluated on {today.isoformat()}" in written and "**Churn warning**" in written
    assert written.startswith(BEFORE) and written.endswith(AFTER)
    r = runner.invoke(app, ["analytics", "evaluate", "--write-docs", str(doc)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "already holds these holdout metrics" in " ".join(r.output.split())
    assert doc.read_text(encoding="utf-8") == written
