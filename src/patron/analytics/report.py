"""Plain-text reports of the models for the command line (Rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from patron.analytics.scores import Evaluation


def print_evaluation(console: Console, ev: Evaluation) -> None:
    console.print(
        f"Calibration: purchases up to {ev.calibration_end.isoformat()}; holdout: the "
        f"{ev.holdout_days} days to {ev.as_of.isoformat()}; {ev.members} members with a purchase "
        "in the calibration period."
    )
    for check in ev.checks:
        fit = check.fit
        params = ", ".join(f"{k} = {v:.4g}" for k, v in fit.params.items())
        console.print(
            f"\n[bold]{fit.model}[/bold]: {params}; log-likelihood {fit.log_likelihood:.1f}"
        )
        for problem in fit.problems:
            console.print(f"  [yellow]not usable:[/yellow] {problem}")
        if check.holdout is None:
            continue
        table = Table("repeat purchases (calibration)", "members", "predicted", "actual")
        rows = check.holdout.rows
        for i, row in enumerate(rows):
            label = (
                f"{row.frequency}+"
                if i == len(rows) - 1 and row.frequency >= 7
                else str(row.frequency)
            )
            table.add_row(label, f"{row.customers:,}", f"{row.predicted:.3f}", f"{row.actual:.3f}")
        console.print(table)
        h = check.holdout
        console.print(
            f"  holdout purchase days: predicted {h.predicted_total:,.1f}, actual "
            f"{h.actual_total:,}; mean absolute error per member {h.mean_absolute_error:.3f}"
        )
    for line in ev.missing:
        if not any(line.endswith(p) for c in ev.checks for p in c.fit.problems):
            console.print(f"[yellow]missing:[/yellow] {line}")
