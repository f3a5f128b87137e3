"""Member scores: purchase days from one statement, then RFM, BG/NBD + Gamma-Gamma on NumPy
arrays, written to ``member_scores`` in one set-based pass (docs/analytics.md, "Member scores").

A purchase is a business day with at least one order of the member that is not fully returned;
its amount is the day's net amount (paid − refunded, fen). One statement reads them (day
numbers computed in SQL): on SQLite grouped into purchase days, on PostgreSQL the orders packed
into byte strings and same-day orders added up by one NumPy sort; every member's summary and
RFM scores (``rfm.summarise``), the models, churn and next purchase run on NumPy arrays of them;
the rows are replaced with one DELETE and one multi-row INSERT (a binary COPY built by NumPy on
PostgreSQL). Nothing loops over members in Python on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import BigInteger, Integer, cast, delete, func, insert, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from patron.analytics import churn as churn_model
from patron.analytics import clv, columnar, nextbuy, personal, recommend, rfm
from patron.analytics.mle import Fit, one_blas_thread
from patron.analytics.models import MemberScore, ModelRun
from patron.members.models import Member
from patron.orders.models import Order
from patron.program import service as program

ERASED = "erased"
RETURNED = "returned"


class day_number(FunctionElement[int]):
    """Days since 1970-01-01 of a DATE column, computed by the database: the rows then carry
    plain integers, with no date object made per row in Python."""

    type = Integer()
    inherit_cache = True


@compiles(day_number)
def _day_number(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


def get_settings(session: Session) -> rfm.ModelSettings:
    return program.get_section(session, rfm.SECTION, rfm.ModelSettings)


def purchase_days_cte(as_of: date) -> Any:
    """Purchase days: (member, business day, net amount) up to ``as_of``."""
    return (
        select(
            Order.member_id.label("member_id"),
            Order.business_date.label("day"),
            func.sum(Order.paid_fen - Order.refunded_fen).label("amount"),
        )
        .join(Member, Member.id == Order.member_id)
        .where(Order.status != RETURNED, Order.business_date <= as_of, Member.status != ERASED)
        .group_by(Order.member_id, Order.business_date)
        .cte("daily")
    )


@dataclass(frozen=True)
class ScoresRun:
    as_of: date
    members: int
    repeat_buyers: int
    purchases: Fit | None
    spend: Fit | None
    #: What is missing, in words, when no model could score (also kept in the run's report).
    missing: tuple[str, ...] = field(default=())
    churn: churn_model.ChurnReport | None = None
    #: "model" when the churn model beat the recency baseline, else "p_alive".
    churn_source: str = "p_alive"
    #: next purchase source, category cycles, recommendation counts and popular lists
    extras: dict[str, Any] = field(default_factory=dict)


def fit_json(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    finite = bool(np.isfinite(fit.log_likelihood))
    return {
        "model": fit.model,
        "params": {k: v for k, v in fit.params.items() if np.isfinite(v)},
        "log_likelihood": fit.log_likelihood if finite else None,
        "customers": fit.customers,
        "problems": list(fit.problems),
    }


@one_blas_thread
def run_scores(
    session: Session, *, now: datetime, tz: ZoneInfo, reads: Session | None = None
) -> ScoresRun:
    """Recompute every member's scores as of today (business day) and record the run.

    The heavy reads (purchase days, purchased lines, redeemed coupons) go to ``reads`` — a
    session on the read replica when one is set up — and every write (the scores, the
    replenishment and recommendation tables, the run record) to ``session``, the primary's
    unit of work. The scores are then those of the replica's state when the job read it."""
    reads = reads or session
    settings = get_settings(session)
    as_of = now.astimezone(tz).date()
    # One read of the purchase days serves the summaries, RFM, the fits, churn and next
    # purchase (the orders are grouped once, by the database).
    data = _purchase_days(reads, as_of)
    session.execute(delete(MemberScore))
    end = float(np.datetime64(as_of, "D").astype(np.int64))
    summary = (
        None
        if data is None
        else rfm.summarise(*data, today=int(end), cut_points=settings.cut_points)
    )
    n = 0 if summary is None else int(summary.member.size)
    lines = personal.purchased_lines(reads, as_of)
    extras: dict[str, Any] = {
        "category_cycles": personal.write_replenishment(session, lines, as_of),
        "recommendations": personal.write_recommendations(session, lines, as_of, reads=reads),
    }
    if n == 0:
        run = ScoresRun(
            as_of, 0, 0, None, None, ("no member has bought anything yet",), extras=extras
        )
        _record(session, "scores", now, run, settings)
        return run
    assert data is not None
    assert summary is not None
    ids = summary.member
    first = summary.first.astype(np.float64)
    last = summary.last.astype(np.float64)
    days = summary.days.astype(np.float64)
    total = summary.total
    first_amount = summary.first_amount
    x, t_x, T = days - 1, last - first, end - first
    # Mean net amount of the repeat purchase days (the Gamma-Gamma input).
    mean_repeat = np.where(x > 0, (total - first_amount) / np.maximum(x, 1), 0.0)

    purchases = clv.fit_bgnbd(
        clv.summaries(x, t_x, T), min_repeat_buyers=settings.min_repeat_buyers
    )
    spend = clv.fit_gamma_gamma(x, mean_repeat, min_repeat_buyers=settings.min_repeat_buyers)
    missing_values = np.full(n, np.nan)
    p_alive = expected = value = not_alive = missing_values
    if purchases.usable:
        p = tuple(purchases.params.values())
        alive = clv.bgnbd_p_alive(p, x, t_x, T)
        p_alive = alive.round(6)
        not_alive = (1.0 - alive).round(6)
        expected = clv.bgnbd_expected(p, float(settings.horizon_days), x, t_x, T).round(4)
        if spend.usable:
            value = np.rint(
                clv.clv(
                    purchases,
                    spend,
                    x,
                    t_x,
                    T,
                    mean_repeat,
                    horizon=settings.clv_horizon_months,
                    period=rfm.MONTH_DAYS,
                    discount_rate=settings.monthly_discount,
                    margin=settings.margin,
                )
            )
    report, risk, explanation = _churn(data, as_of, settings, summary.member)
    if explanation is not None:
        # Kept so that the member page can explain one member's score without refitting.
        extras["churn_explain"] = explanation["features"]
        extras["churn_intercept"] = explanation["intercept"]
    if purchases.usable:
        r_, alpha_ = purchases.params["r"], purchases.params["alpha"]
        next_days = nextbuy.model_days(r_, alpha_, x, T).round(1)
        extras["next_purchase_source"] = "model"
    else:
        # The median-interval rule needs no fit (members are sorted by id in both).
        _, base = nextbuy.baseline_days(data[0], data[1], at=int(end))
        next_days = np.asarray(base, dtype=np.float64).round(1)
        extras["next_purchase_source"] = "median_interval"
    source = "p_alive"
    if risk is not None:
        churn_risk = risk.round(6)
        source = "model"
    else:
        churn_risk = not_alive
    _write_scores(
        session,
        [
            columnar.Column("member_id", "int4", ids),
            columnar.Column("as_of", "date", np.full(n, int(end), dtype=np.int64)),
            columnar.Column("recency_days", "int4", (end - last).astype(np.int64)),
            columnar.Column("purchase_days", "int4", days.astype(np.int64)),
            columnar.Column("monetary_fen", "int8", np.rint(total).astype(np.int64)),
            columnar.Column("r_score", "int4", summary.r),
            columnar.Column("f_score", "int4", summary.f),
            columnar.Column("m_score", "int4", summary.m),
            columnar.Column("segment", "text", summary.segment),
            _nullable("p_alive", "float8", p_alive),
            _nullable("expected_purchases", "float8", expected),
            _nullable("clv_fen", "int8", value),
            _nullable("churn_risk", "float8", churn_risk),
            _nullable("next_purchase_days", "float8", next_days),
        ],
        as_of,
    )
    missing = (*purchases.problems, *spend.problems)
    run = ScoresRun(as_of, n, int((x > 0).sum()), purchases, spend, missing, report, source, extras)
    _record(session, "scores", now, run, settings)
    return run


def _nullable(name: str, kind: str, values: Any) -> columnar.Column:
    """A float column whose NaNs are NULLs (as integers if ``kind`` is int8)."""
    v = np.asarray(values, dtype=np.float64)
    null = ~np.isfinite(v)
    if kind == "int8":
        return columnar.Column(name, kind, np.where(null, 0, v).astype(np.int64), null)
    return columnar.Column(name, kind, v, null)


def _write_scores(session: Session, columns: list[columnar.Column], as_of: date) -> None:
    """Append the member scores: binary COPY on PostgreSQL, one Core executemany elsewhere."""
    conn = session.connection()
    if columnar.is_postgres(conn):
        columnar.copy_in(conn, MemberScore.__tablename__, columns)
        return
    lists: list[list[Any]] = []
    for c in columns:
        if c.kind == "date":
            lists.append([as_of] * len(c.values))
            continue
        values = np.asarray(c.values).tolist()
        if c.null is not None:
            values = [None if gone else v for v, gone in zip(values, c.null.tolist(), strict=True)]
        lists.append(values)
    names = [c.name for c in columns]
    conn.execute(
        insert(MemberScore.metadata.tables[MemberScore.__tablename__]),
        [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)],
    )


def _purchase_days(session: Session, as_of: date) -> tuple[Any, Any, Any] | None:
    """Every purchase day as arrays (member, day number, net amount), or None without any.
    Read on the connection (no ORM row processing) with the day numbers computed in SQL; on
    PostgreSQL with a binary COPY straight into NumPy."""
    conn = session.connection()
    if columnar.is_postgres(conn):
        # The orders themselves, packed: nearly every order is a purchase day of its own, so
        # a GROUP BY in the database (a hash of every order, spilled to disk past work_mem)
        # cost 3.5 times the CPU of reading them and adding up same-day orders with one sort.
        erased = (
            select(Member.id).where(Member.id == Order.member_id, Member.status == ERASED).exists()
        )
        query = select(
            cast(Order.member_id, BigInteger),
            cast(day_number(Order.business_date), BigInteger),
            cast(func.coalesce(Order.paid_fen - Order.refunded_fen, 0), BigInteger),
        ).where(Order.status != RETURNED, Order.business_date <= as_of, ~erased)
        matrix = columnar.read_bigints(conn, query, 3)
        if not matrix.shape[0]:
            return None
        members, days, amounts = columnar.sum_by_pairs(matrix[:, 0], matrix[:, 1], matrix[:, 2])
        return members, days, amounts.astype(np.float64)
    daily = purchase_days_cte(as_of)
    rows = (
        session.connection()
        .execute(
            select(daily.c.member_id, day_number(daily.c.day), cast(daily.c.amount, BigInteger))
        )
        .all()
    )
    if not rows:
        return None
    who, day, amount = zip(*rows, strict=True)
    return (
        np.fromiter(who, dtype=np.int64, count=len(who)),
        np.fromiter(day, dtype=np.int64, count=len(day)),
        np.fromiter(amount, dtype=np.float64, count=len(amount)),
    )


def _churn(
    data: tuple[Any, Any, Any] | None, as_of: date, settings: rfm.ModelSettings, ids: Any
) -> tuple[churn_model.ChurnReport | None, Any, dict[str, Any] | None]:
    """The churn model's holdout report and, if it beats the recency baseline, every scored
    member's risk (in the order of ``ids``) from a model refitted on the latest labelled cut,
    with that model's ``explain()``."""
    if data is None:
        return None, None, None
    who, day, amount = data
    today = int(np.datetime64(as_of, "D").astype(np.int64))
    window = settings.churn_window_days
    report, _ = churn_model.train_and_judge(who, day, amount, today=today, window=window)
    if not report.beats_baseline:
        return report, None, None
    latest = churn_model.features(who, day, amount, cut=today - window, window=window)
    y = churn_model.labels(latest, who, day, cut=today - window, window=window)
    model = churn_model.fit(latest.values, y)
    now_features = churn_model.features(who, day, amount, cut=today, window=window)
    risk = model.risk(now_features.values)
    # Scored members and feature rows are both sorted by member id and cover the same members.
    position = np.searchsorted(now_features.member, ids)
    report = churn_model.ChurnReport(**{**vars(report), "weights": model.weights()})
    explanation = {
        "features": model.explain(),
        "intercept": float(model.regression.intercept_[0]),
    }
    return report, risk[position], explanation


def _record(
    session: Session, kind: str, now: datetime, run: Any, settings: rfm.ModelSettings
) -> None:
    report: dict[str, Any] = {
        "settings": settings.model_dump(mode="json"),
        "missing": list(run.missing),
    }
    if isinstance(run, ScoresRun):
        report |= {
            "repeat_buyers": run.repeat_buyers,
            "purchases": fit_json(run.purchases),
            "spend": fit_json(run.spend),
            "churn": None if run.churn is None else run.churn.as_json(),
            "churn_source": run.churn_source,
            **run.extras,
        }
    else:
        report |= run.report()
    session.add(
        ModelRun(kind=kind, ran_at=now, as_of=run.as_of, members=run.members, report=report)
    )
    session.flush()


# --- evaluation on a calibration / holdout split ----------------------------------------------


@dataclass(frozen=True)
class ModelCheck:
    fit: Fit
    holdout: clv.Holdout | None


@dataclass(frozen=True)
class Evaluation:
    as_of: date
    calibration_end: date
    holdout_days: int
    members: int
    checks: tuple[ModelCheck, ...]
    missing: tuple[str, ...] = field(default=())
    churn: churn_model.ChurnReport | None = None
    next_purchase: nextbuy.NextPurchaseCheck | None = None
    products: recommend.RankingCheck | None = None
    coupons: recommend.RankingCheck | None = None
    recommend_cut: date | None = None

    def report(self) -> dict[str, Any]:
        def js(v: Any) -> Any:
            return None if v is None else v.as_json()

        return {
            "churn": js(self.churn),
            "next_purchase": js(self.next_purchase),
            "recommend_products": js(self.products),
            "recommend_coupons": js(self.coupons),
            "calibration_end": self.calibration_end.isoformat(),
            "holdout_days": self.holdout_days,
            "models": [
                {
                    "fit": fit_json(c.fit),
                    "holdout": None
                    if c.holdout is None
                    else {
                        "rows": [vars(r) for r in c.holdout.rows],
                        "predicted_total": c.holdout.predicted_total,
                        "actual_total": c.holdout.actual_total,
                        "mean_absolute_error": c.holdout.mean_absolute_error,
                    },
                }
                for c in self.checks
            ],
        }


@one_blas_thread
def evaluate(
    session: Session, *, now: datetime, tz: ZoneInfo, reads: Session | None = None
) -> Evaluation:
    """Fit on history up to ``holdout_days`` before today, predict the purchase days of the
    holdout per member, and compare with what happened, by calibration frequency. History is
    read from ``reads`` (the replica when set up); the run record is written to ``session``."""
    reads = reads or session
    settings = get_settings(session)
    as_of = now.astimezone(tz).date()
    cut = as_of - timedelta(days=settings.holdout_days)
    data = _purchase_days(reads, as_of)
    checks: list[ModelCheck] = []
    missing: list[str] = []
    members = 0
    next_check = None
    if data is not None:
        who, day, _ = data
        split = clv.split_transactions(
            who,
            day,
            calibration_end=int(np.datetime64(cut, "D").astype(np.int64)),
            holdout_end=int(np.datetime64(as_of, "D").astype(np.int64)),
        )
        members = int(split.x.size)
    if members == 0:
        missing.append(
            f"no member bought anything on or before {cut.isoformat()}: the evaluation needs "
            f"history older than the {settings.holdout_days}-day holdout"
        )
    else:
        s = clv.summaries(split.x, split.t_x, split.T)
        for fit_model in (clv.fit_bgnbd, clv.fit_pareto):
            fit = fit_model(s, min_repeat_buyers=settings.min_repeat_buyers)
            check = None
            if fit.usable:
                check = clv.holdout_check(
                    fit, split.x, split.t_x, split.T, split.holdout, float(settings.holdout_days)
                )
            else:
                missing.extend(f"{fit.model}: {p}" for p in fit.problems)
            checks.append(ModelCheck(fit, check))
        bg = checks[0].fit
        next_check = nextbuy.check(
            who,
            day,
            cut=int(np.datetime64(cut, "D").astype(np.int64)),
            holdout_end=int(np.datetime64(as_of, "D").astype(np.int64)),
            params=(bg.params["r"], bg.params["alpha"]) if bg.usable else None,
            x=split.x,
            T=split.T,
            ids=split.customer,
        )
    churn_report = None
    if data is not None:
        churn_report, _ = churn_model.train_and_judge(
            *data,
            today=int(np.datetime64(as_of, "D").astype(np.int64)),
            window=settings.churn_window_days,
        )
        missing.extend(f"churn model: {p}" for p in churn_report.missing)
    rec_cut = as_of - timedelta(days=settings.recommend_holdout_days)
    rc = int(np.datetime64(rec_cut, "D").astype(np.int64))
    lines = personal.purchased_lines(reads, as_of)
    products = recommend.evaluate(lines.member, lines.sku, lines.day, cut=rc, items=len(lines.skus))
    c_member, c_item, c_day, codes = personal.redeemed_coupons(reads, as_of)
    coupons = recommend.evaluate(c_member, c_item, c_day, cut=rc, items=len(codes))
    if products is None:
        missing.append(
            f"recommendations: no member with purchases before {rec_cut.isoformat()} bought "
            "a product new to them after it, so there is nothing to judge them on"
        )
    result = Evaluation(
        as_of,
        cut,
        settings.holdout_days,
        members,
        tuple(checks),
        tuple(missing),
        churn_report,
        next_check,
        products,
        coupons,
        rec_cut,
    )
    _record(session, "evaluate", now, result, settings)
    return result


# --- what the console shows -------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRow:
    segment: str
    members: int
    monetary_fen: int  # average net spend
    clv_fen: int | None  # average CLV
    p_alive: float | None


@dataclass(frozen=True)
class Overview:
    scored: int
    cells: dict[tuple[int, int], int]  # (R, F) → members
    segments: list[SegmentRow]
    last_scores: ModelRun | None
    last_evaluation: ModelRun | None


def _last_run(session: Session, kind: str) -> ModelRun | None:
    return session.scalars(
        select(ModelRun).where(ModelRun.kind == kind).order_by(ModelRun.id.desc()).limit(1)
    ).first()


def overview(session: Session) -> Overview:
    cells = {
        (int(r), int(f)): int(n)
        for r, f, n in session.execute(
            select(MemberScore.r_score, MemberScore.f_score, func.count()).group_by(
                MemberScore.r_score, MemberScore.f_score
            )
        )
    }
    segments = [
        SegmentRow(
            row.segment,
            int(row.n),
            round(float(row.monetary)),
            None if row.clv is None else round(float(row.clv)),
            None if row.alive is None else float(row.alive),
        )
        for row in session.execute(
            select(
                MemberScore.segment,
                func.count().label("n"),
                func.avg(MemberScore.monetary_fen).label("monetary"),
                func.avg(MemberScore.clv_fen).label("clv"),
                func.avg(MemberScore.p_alive).label("alive"),
            )
            .group_by(MemberScore.segment)
            .order_by(func.count().desc(), MemberScore.segment)
        )
    ]
    return Overview(
        scored=sum(cells.values()),
        cells=cells,
        segments=segments,
        last_scores=_last_run(session, "scores"),
        last_evaluation=_last_run(session, "evaluate"),
    )
