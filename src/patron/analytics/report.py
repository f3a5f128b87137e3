"""Plain-text reports of the models for the command line (Rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from patron.analytics.finance import MISSING, Liability
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
    ch = ev.churn
    if ch is not None and ch.auc is not None and ch.baseline_auc is not None:
        console.print(
            f"\n[bold]Churn warning[/bold] (no purchase in the next window): trained on "
            f"{ch.trained_on:,} members, judged on {ch.judged_on:,} later (churn rate "
            f"{ch.base_rate:.1%}). AUC {ch.auc:.3f} vs recency-only baseline "
            f"{ch.baseline_auc:.3f}: "
            + (
                f"the model beats the baseline by {ch.auc - ch.baseline_auc:.3f} and is used"
                if ch.beats_baseline
                else "the model does not beat the baseline and is not used"
            )
        )
        if ch.margin_ci is not None:
            low, high = ch.margin_ci
            console.print(
                f"  AUC difference {ch.auc - ch.baseline_auc:+.4f}, 95 % confidence interval "
                f"{low:+.4f} to {high:+.4f} (DeLong): "
                + (
                    "the gain is not chance"
                    if low > 0
                    else "the interval includes zero, so no gain is claimed"
                )
            )
        lift = Table("risk decile", "members", "churn rate", "lift", "baseline lift")
        for lrow, base in zip(ch.lift, ch.baseline_lift, strict=True):
            lift.add_row(
                str(lrow.decile),
                f"{lrow.members:,}",
                f"{lrow.churn_rate:.1%}",
                f"{lrow.lift:.2f}",
                f"{base.lift:.2f}",
            )
        console.print(lift)
        weights = ", ".join(f"{k} {v:+.2f}" for k, v in ch.weights.items())
        console.print(f"  weights (log-odds per standard deviation): {weights}")
    nx = ev.next_purchase
    if nx is not None:
        console.print(
            f"\n[bold]Next purchase[/bold] (days from {ev.calibration_end.isoformat()} to the "
            f"first purchase in the holdout, capped at {ev.holdout_days}): "
            f"{nx.returned:,} of {nx.members:,} members bought again."
        )
        table = Table("prediction", "mean absolute error (days)", "median absolute error (days)")
        if nx.model_mae is not None and nx.model_median_error is not None:
            table.add_row("BG/NBD pace", f"{nx.model_mae:.1f}", f"{nx.model_median_error:.1f}")
        if nx.baseline_mae is not None and nx.baseline_median_error is not None:
            table.add_row(
                "median interval (baseline)",
                f"{nx.baseline_mae:.1f}",
                f"{nx.baseline_median_error:.1f}",
            )
        console.print(table)
        if nx.model_mae is not None and nx.baseline_mae is not None:
            console.print(
                "  the model "
                + ("beats" if nx.beats_baseline else "does not beat")
                + f" the baseline ({nx.baseline_mae - nx.model_mae:+.1f} days of error saved)"
            )
    for title, rec in (("products", ev.products), ("coupons", ev.coupons)):
        if rec is None:
            continue
        console.print(
            f"\n[bold]Recommendations: {title}[/bold] (trained on history up to "
            f"{ev.recommend_cut}, judged on {rec.members:,} members with an item new to them "
            f"after it; {rec.items:,} items)"
        )
        table = Table("", "precision@10", "recall@10")
        table.add_row("co-occurrence", f"{rec.precision:.4f}", f"{rec.recall:.4f}")
        table.add_row(
            "popularity (baseline)", f"{rec.baseline_precision:.4f}", f"{rec.baseline_recall:.4f}"
        )
        console.print(table)
    for line in ev.missing:
        if not any(line.endswith(p) for c in ev.checks for p in c.fit.problems):
            console.print(f"[yellow]missing:[/yellow] {line}")


def print_liability(console: Console, lb: Liability) -> None:
    console.print(
        f"Points liability as of {lb.as_of.isoformat(timespec='minutes')} at "
        f"{lb.unit_fen} fen per {lb.points_per_unit} points:"
    )
    console.print(
        f"  outstanding {lb.outstanding:,} points (pending {lb.pending:,}); liability "
        f"{lb.liability_fen:,} fen"
    )
    if lb.breakage.denominator:
        console.print(
            f"  breakage {lb.breakage.numerator:,} of {lb.breakage.denominator:,} matured "
            f"points expired ({lb.breakage.value:.1%}); expected breakage "
            f"{lb.expected_breakage_fen:,} fen; net liability {lb.net_liability_fen:,} fen"
        )
    for title, rows in (("tier", lb.by_tier), ("lot age (days)", lb.by_age)):
        table = Table(title, "points", "liability (fen)")
        for row in rows:
            table.add_row(row.key, f"{row.points:,}", f"{row.liability_fen:,}")
        console.print(table)
    months = Table("month", "earned", "redeemed", "expired", "outstanding", "liability (fen)")
    for m in lb.months:
        months.add_row(
            m.month,
            f"{m.earned:,}",
            f"{m.redeemed:,}",
            f"{m.expired:,}",
            f"{m.outstanding:,}",
            f"{m.liability_fen:,}",
        )
    console.print(months)
    for key in lb.missing:
        console.print(f"[yellow]missing:[/yellow] {MISSING[key]}")
