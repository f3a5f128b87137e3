"""Console: anomaly alerts on daily metrics, and every analytics report as a CSV or Excel
download (RFM grid, segments, cohorts with spend curves, the purchase and points funnels,
registration and first-purchase attribution, liability by tier / age / month, the churn lift
table, alerts and the member-level scores, these optionally anonymised).

Reports read the replica when one is configured (``PATRON_READ_DATABASE_URL``): they may lag
the primary by the replication delay."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from patron.analytics import alerts, cohorts, finance, rfm
from patron.analytics import export as scores_export
from patron.analytics import scores as scores_service
from patron.auth import permissions as perm
from patron.errors import Forbidden, NotFound
from patron.ops.replica import read_session
from patron.web import i18n
from patron.web.console import exports
from patron.web.console.exports import Rows, table_response
from patron.web.console.page_kit import MembersReader, console_router
from patron.web.i18n import N_
from patron.web.pages import Viewer, render, translate

router = console_router()

METRIC_NAMES: Final = {
    "registrations": N_("Registrations"),
    "orders": N_("Orders"),
    "points_issued": N_("Points issued"),
    "points_redeemed": N_("Points redeemed"),
    "returns": N_("Returns"),
    "store_redemptions": N_("Coupon redemptions"),
}


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.business_timezone)


@router.get("/analytics/alerts")
def alerts_page(
    request: Request,
    viewer: MembersReader,
) -> HTMLResponse:
    with read_session(request) as session:
        rows = alerts.recent(session)
        settings = alerts.program_settings(session)
    names = {k: translate(request, v) for k, v in METRIC_NAMES.items()}
    return render(
        request,
        "console/analytics/alerts.html",
        {"nav": "analytics", "alerts": rows, "names": names, "settings": settings},
    )


# --- exports ------------------------------------------------------------------------------------

Report = tuple[list[str], Callable[[Session], Iterator[Rows]]]


def _once(make: Callable[[Session], list[list[object]]]) -> Callable[[Session], Iterator[Rows]]:
    def batches(session: Session) -> Iterator[Rows]:
        yield make(session)

    return batches


def _rate(value: float | None) -> object:
    return "" if value is None else round(value, 4)


def _segment(locale: str, key: str) -> str:
    names = rfm.SEGMENTS.get(key)
    if names is None:
        return key
    return names[1] if locale.startswith("zh") else names[0]


def _reports(request: Request, viewer: Viewer, anonymized: bool) -> dict[str, Report]:
    now = request.app.state.clock.now()
    tz = _tz(request)
    loc = viewer.locale

    def rfm_rows(session: Session) -> list[list[object]]:
        view = scores_service.overview(session)
        return [[r, f, _segment(loc, seg), view.cells.get((r, f), 0)] for r, f, seg in rfm.grid()]

    def segment_rows(session: Session) -> list[list[object]]:
        view = scores_service.overview(session)
        return [
            [
                _segment(loc, s.segment),
                s.members,
                s.monetary_fen,
                "" if s.clv_fen is None else s.clv_fen,
                _rate(s.p_alive),
            ]
            for s in view.segments
        ]

    def cohort_rows(session: Session) -> list[list[object]]:
        out: list[list[object]] = []
        for c in cohorts.cohorts(session, now=now, tz=tz).cohorts:
            per_member = c.spend_per_member
            for k, ratio in enumerate(c.retention):
                out.append([
                    c.month, c.members, k, ratio.numerator, _rate(ratio.value), c.spend_fen[k],
                    "" if per_member[k] is None else per_member[k],
                ])  # fmt: skip
        return out

    def points_funnel_rows(session: Session) -> list[list[object]]:
        f = cohorts.cohorts(session, now=now, tz=tz).funnel
        return [
            [i18n.gettext(loc, N_("Registered")), f.registered, ""],
            [i18n.gettext(loc, N_("With points earned")), f.earned.numerator,
             _rate(f.earned.value)],
            [i18n.gettext(loc, N_("With points redeemed")), f.redeemed.numerator,
             _rate(f.redeemed.value)],
        ]  # fmt: skip

    def attribution_rows(session: Session) -> list[list[object]]:
        at = cohorts.cohorts(session, now=now, tz=tz).attribution
        out: list[list[object]] = []
        for counted, part, rows in (
            (N_("Registrations"), N_("Channel"), at.registrations_by_channel),
            (N_("Registrations"), N_("Store"), at.registrations_by_store),
            (N_("First purchases"), N_("Channel"), at.first_orders_by_channel),
            (N_("First purchases"), N_("Store"), at.first_orders_by_store),
        ):
            for key, share in rows:
                out.append([
                    at.since, i18n.gettext(loc, counted), i18n.gettext(loc, part), key,
                    share.numerator, _rate(share.value),
                ])  # fmt: skip
        return out

    def funnel_rows(session: Session) -> list[list[object]]:
        f = cohorts.cohorts(session, now=now, tz=tz).funnel
        return [
            [i18n.gettext(loc, N_("Registered")), f.registered, ""],
            [
                i18n.gettext(loc, N_("With a first purchase")),
                f.first_purchase.numerator,
                _rate(f.first_purchase.value),
            ],
            [
                i18n.gettext(loc, N_("With a second purchase")),
                f.second_purchase.numerator,
                _rate(f.second_purchase.value),
            ],
        ]

    def liability_rows(part: str) -> Callable[[Session], list[list[object]]]:
        def make(session: Session) -> list[list[object]]:
            lb = finance.liability(session, now=now, tz=tz)
            if part == "months":
                return [
                    [m.month, m.earned, m.redeemed, m.expired, m.outstanding, m.liability_fen]
                    for m in lb.months
                ]
            rows = lb.by_tier if part == "tiers" else lb.by_age
            return [
                [
                    (r.name_zh if loc.startswith("zh") else r.name) or r.key,
                    r.points,
                    r.liability_fen,
                ]
                for r in rows
            ]

        return make

    def churn_rows(session: Session) -> list[list[object]]:
        run = scores_service.overview(session).last_scores
        churn = None if run is None else run.report.get("churn")
        if not churn or not churn.get("lift"):
            return []
        return [
            [m["decile"], m["members"], round(m["churn_rate"], 4), round(m["lift"], 3),
             round(b["lift"], 3)]
            for m, b in zip(churn["lift"], churn["baseline_lift"], strict=True)
        ]  # fmt: skip

    def alert_rows(session: Session) -> list[list[object]]:
        names = {k: i18n.gettext(loc, v) for k, v in METRIC_NAMES.items()}
        return [
            [a.day.isoformat(), names.get(a.metric, a.metric), a.scope, a.value,
             "" if a.expected is None else round(a.expected, 1),
             "" if a.low is None else round(a.low, 1), "" if a.high is None else round(a.high, 1)]
            for a in alerts.recent(session, limit=10_000)
        ]  # fmt: skip

    key = request.app.state.settings.keys()["index_key"] if anonymized else None

    def score_batches(session: Session) -> Iterator[Rows]:
        # Batches as small as the other exports': the peak memory is one batch of rows.
        yield from scores_export.scores_batches(session, key=key, locale=loc, batch=exports.BATCH)

    return {
        "rfm": ([N_("Recency score"), N_("Frequency score"), N_("Segment"), N_("Members")],
                _once(rfm_rows)),
        "segments": ([N_("Segment"), N_("Members"), N_("Average net spend (fen)"),
                      N_("Average lifetime value (fen)"), N_("Average chance still active")],
                     _once(segment_rows)),
        "cohorts": ([N_("Registration month"), N_("Members"), N_("Months after registration"),
                     N_("Members with a purchase"), N_("Retention"), N_("Net spend (fen)"),
                     N_("Net spend per member to date (fen)")], _once(cohort_rows)),
        "funnel": ([N_("Step"), N_("Members"), N_("Share of the previous step")],
                   _once(funnel_rows)),
        "points-funnel": ([N_("Step"), N_("Members"), N_("Share of the previous step")],
                          _once(points_funnel_rows)),
        "attribution": ([N_("Since month"), N_("Counted"), N_("Grouped by"),
                         N_("Channel or store"), N_("Members"), N_("Share")],
                        _once(attribution_rows)),
        "liability-tiers": ([N_("Tier"), N_("Points"), N_("Liability (fen)")],
                            _once(liability_rows("tiers"))),
        "liability-ages": ([N_("Age"), N_("Points"), N_("Liability (fen)")],
                           _once(liability_rows("ages"))),
        "liability-months": ([N_("Month"), N_("Earned"), N_("Redeemed"), N_("Expired"),
                              N_("Outstanding at month end"), N_("Liability (fen)")],
                             _once(liability_rows("months"))),
        "churn-lift": ([N_("Risk tenth (1 = riskiest)"), N_("Members"), N_("Churn rate"),
                        N_("Lift"), N_("Lift of recency alone")], _once(churn_rows)),
        "alerts": ([N_("Day"), N_("Metric"), N_("Store"), N_("Value"), N_("Expected"),
                    N_("Lowest usual"), N_("Highest usual")], _once(alert_rows)),
        "scores": ([N_("Pseudonym") if anonymized else N_("Member number"), N_("Scored on"),
                    N_("Days since the last purchase"), N_("Purchase days"),
                    N_("Net spend (fen)"), N_("Recency score"), N_("Frequency score"),
                    N_("Monetary score"), N_("Segment"), N_("Chance still active"),
                    N_("Expected purchases"), N_("Lifetime value (fen)"), N_("Churn risk"),
                    N_("Loyalty score"), N_("Days to the next purchase")], score_batches),
    }  # fmt: skip


REPORTS: Final = (
    "rfm",
    "segments",
    "cohorts",
    "funnel",
    "points-funnel",
    "attribution",
    "liability-tiers",
    "liability-ages",
    "liability-months",
    "churn-lift",
    "alerts",
    "scores",
)


@router.get("/analytics/export/{report}")
def export_report(
    request: Request,
    report: str,
    viewer: MembersReader,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "csv",
    anonymized: Annotated[bool, Query()] = False,
) -> Response:
    """One analytics report as CSV (streamed) or XLSX. Liability needs ``points:read``."""
    if report not in REPORTS:
        raise NotFound("not_found", "This page does not exist.")
    if report.startswith("liability") and not viewer.can(perm.POINTS_READ):
        raise Forbidden(
            "forbidden", "The points liability needs the permission to read points (points:read)."
        )
    header, batches = _reports(request, viewer, anonymized)[report]
    name = f"{report}-anonymized" if anonymized and report == "scores" else report
    return table_response(
        request, viewer, fmt if fmt in ("csv", "xlsx") else "csv", name, header, batches,
        replica=True,
    )  # fmt: skip
