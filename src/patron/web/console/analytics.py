"""Console: member scores — the RFM grid, segments, and the CLV models' state (fits, problems in
words, the last holdout evaluation), cohorts and funnels; the points liability. Reads what the
nightly scores job wrote, from the read replica when one is set up (it may lag the primary)."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse

from patron.analytics import cohorts, finance, rfm
from patron.analytics import scores as scores_service
from patron.ops.replica import read_session
from patron.web.console import model_words
from patron.web.console.dashboard import CHANNEL_LABELS as ORDER_CHANNELS
from patron.web.console.members import CHANNEL_LABELS as MEMBER_CHANNELS
from patron.web.console.page_kit import MembersReader, PointsReader, console_router
from patron.web.i18n import N_
from patron.web.pages import render, translate

router = console_router()

#: Segment names for the catalogue (rfm.SEGMENTS holds the same English and Chinese names for
#: exports; a test keeps them equal).
SEGMENT_NAMES = {
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalists": N_("Potential loyalists"),
    "new": N_("New customers"),
    "promising": N_("Promising"),
    "need_attention": N_("Need attention"),
    "about_to_sleep": N_("About to sleep"),
    "at_risk": N_("At risk"),
    "cant_lose": N_("Can't lose them"),
    "hibernating": N_("Hibernating"),
}


#: The reports offered for download on this page (the liability page offers its own).
EXPORTS = (
    ("rfm", N_("RFM grid")),
    ("segments", N_("Segments")),
    ("cohorts", N_("Registration cohorts")),
    ("funnel", N_("Purchase funnel")),
    ("points-funnel", N_("Points funnel")),
    ("attribution", N_("Where members come from")),
    ("churn-lift", N_("Churn warning: lift table")),
    ("alerts", N_("Anomaly alerts")),
    ("scores", N_("Member scores")),
)


def _json(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/analytics")
def member_scores(
    request: Request,
    viewer: MembersReader,
) -> HTMLResponse:
    tz = ZoneInfo(request.app.state.settings.business_timezone)
    with read_session(request) as session:  # the replica when one is set up
        view = scores_service.overview(session)
        settings = scores_service.get_settings(session)
        retention = cohorts.cohorts(session, now=request.app.state.clock.now(), tz=tz)
    names = {key: translate(request, label) for key, label in SEGMENT_NAMES.items()}
    chart = {
        "cells": [
            {
                "r": r,
                "f": f,
                "members": view.cells.get((r, f), 0),
                "segment": names[seg],
            }
            for r, f, seg in rfm.grid()
        ],
        "labels": {
            "r": translate(request, "Recency score (5 = most recent)"),
            "f": translate(request, "Frequency score (5 = most frequent)"),
            "members": translate(request, "Members"),
        },
    }
    last = view.last_scores
    evaluation = view.last_evaluation
    ctx: dict[str, Any] = {
        "nav": "analytics",
        "view": view,
        "names": names,
        "settings": settings,
        "last": last,
        "fits": [] if last is None else [last.report.get("purchases"), last.report.get("spend")],
        "evaluation": evaluation,
        "chart_json": _json(chart),
        "retention": retention,
        "member_channels": {k: translate(request, v) for k, v in MEMBER_CHANNELS.items()},
        "order_channels": {k: translate(request, v) for k, v in ORDER_CHANNELS.items()},
        "exports": [(key, translate(request, label)) for key, label in EXPORTS],
        "words": lambda line: model_words.translate(viewer.locale, str(line)),
    }
    return render(request, "console/analytics/scores.html", ctx)


#: The finance report's notes (finance.MISSING holds the same English text for the CLI).
MISSING_NOTES = {
    "no_points": N_("No points have been issued yet: there is no liability to report."),
    "no_matured": N_(
        "No points have reached their expiry date yet, so breakage cannot be estimated "
        "from history; the liability is shown without a breakage allowance."
    ),
}
AGE_LABELS = {
    "0-90": N_("Up to 90 days"),
    "91-180": N_("91 to 180 days"),
    "181-365": N_("181 to 365 days"),
    "366+": N_("Over a year"),
    "pending": N_("Pending (not yet spendable)"),
}


@router.get("/analytics/liability")
def points_liability(
    request: Request,
    viewer: PointsReader,
) -> HTMLResponse:
    tz = ZoneInfo(request.app.state.settings.business_timezone)
    with read_session(request) as session:  # the replica when one is set up
        report = finance.liability(session, now=request.app.state.clock.now(), tz=tz)
    ctx: dict[str, Any] = {
        "nav": "analytics",
        "lb": report,
        "notes": [translate(request, MISSING_NOTES[k]) for k in report.missing],
        "ages": {k: translate(request, v) for k, v in AGE_LABELS.items()},
    }
    return render(request, "console/analytics/liability.html", ctx)
