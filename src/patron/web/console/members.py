"""Console: the member list with search, and one member's page (profile, tier, points, orders,
audit trail). The forms on the member page post to ``member_actions``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from patron.analytics import member_scores, rfm
from patron.audit import service as audit
from patron.auth import permissions as perm
from patron.errors import NotFound
from patron.kit.crypto import FieldCipher
from patron.ledger import domain as ledger_domain
from patron.ledger import growth, queries
from patron.ledger import service as ledger
from patron.members import domain as member_domain
from patron.members import service as members
from patron.messaging import service as messaging
from patron.orders import service as orders
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers
from patron.web.console import audit_labels, history_text
from patron.web.console.page_kit import MembersReader, console_router
from patron.web.console.sorting import Sorting
from patron.web.context import request_ctx
from patron.web.i18n import N_
from patron.web.pages import (
    Viewer,
    get_session,
    render,
    translate,
)
from patron.web.portal import summary

router = console_router()

PAGE_SIZE: Final = 20
#: the member list counts matches up to here ("1,000+"); narrower searches page through all
COUNT_LIMIT: Final = 1_000
TABS: Final = ("overview", "points", "orders", "audit")
TAB_LABELS: Final = {
    "overview": N_("Overview"),
    "points": N_("Points"),
    "orders": N_("Orders and returns"),
    "audit": N_("Audit trail"),
}
# Permission each tab needs beyond members:read (the API's read permissions).
TAB_PERMISSIONS: Final = {
    "overview": perm.MEMBERS_READ,
    "points": perm.POINTS_READ,
    "orders": perm.ORDERS_READ,
    "audit": perm.AUDIT_READ,
}
# Reasons the tier service writes itself (operators' override reasons are shown as typed).
TIER_REASONS: Final = {
    "growth reached the threshold": N_("growth reached the threshold"),
    "refund took growth below the threshold": N_("refund took growth below the threshold"),
    "below the retention threshold": N_("below the retention threshold"),
}
STATUSES: Final = (("active", N_("Active")), ("frozen", N_("Frozen")), ("erased", N_("Erased")))
CHANNEL_LABELS: Final = {
    "store": N_("Store"),
    "kiosk": N_("Kiosk"),
    "web": N_("Website"),
    "app": N_("App"),
    "mini_program": N_("Mini program"),
    "partner": N_("Partner"),
}
MEMBER_TYPE_LABELS: Final = {
    "regular": N_("Regular"),
    "vip": N_("VIP"),
    "enterprise": N_("Enterprise"),
    "student": N_("Student"),
    "senior": N_("Senior"),
}
GENDER_LABELS: Final = {
    "female": N_("Female"),
    "male": N_("Male"),
    "other": N_("Other"),
    "undisclosed": N_("Undisclosed"),
}
CONTACT_LABELS: Final = {
    "sms": N_("SMS"),
    "email": N_("Email"),
    "push": N_("Push"),
    "wechat": N_("WeChat"),
}
POSTING_LABELS: Final = {
    "earn": N_("Earned"),
    "release": N_("Released"),
    "redeem": N_("Redeemed"),
    "reversal": N_("Reversal"),
    "expire": N_("Expired"),
    "clawback": N_("Clawback"),
    "adjust": N_("Adjustment"),
    "repay": N_("Debt repaid"),
}
TIER_CHANGE_LABELS: Final = {
    "upgrade": N_("Upgrade"),
    "downgrade": N_("Downgrade"),
    "grace": N_("Grace period"),
    "override": N_("Override"),
    "refund_demotion": N_("Refund demotion"),
}
ADJUSTMENT_STATUS_LABELS: Final = {
    "pending_approval": N_("Waiting for approval"),
    "applied": N_("Applied"),
    "rejected": N_("Rejected"),
}
ORDER_STATUS_LABELS: Final = {
    "completed": N_("Completed"),
    "partially_returned": N_("Partly returned"),
    "returned": N_("Returned"),
}
ORDER_CHANNEL_LABELS: Final = {**CHANNEL_LABELS, "online": N_("Online")}
#: The churn model's inputs, as the member page explains a loyalty score (churn.FEATURES).
SCORE_WORDS: Final = {
    "recency_days": N_("Days since the last purchase"),
    "purchase_days": N_("Days with a purchase"),
    "log_spend": N_("Net spend so far (logarithm)"),
    "tenure_days": N_("Days since the first purchase"),
    "recent_purchase_days": N_("Days with a purchase in the last %(n)s days"),
}

#: Where a consent was given: registration ("register:<channel>"), the portal, an import, or an
#: API caller ("<actor type>:<name>").
CONSENT_SOURCES: Final = {"portal": N_("Member portal"), "import": N_("Data import")}
LEDGER_LABELS: Final = {"points": N_("Points"), "growth": N_("Growth value")}


def tier_name(tier: tier_domain.Tier, locale: str) -> str:
    """A tier's name in the viewer's language (the Chinese name when there is one)."""
    return (tier.name_zh if locale == "zh_CN" else "") or tier.name


def consent_source(request: Request, source: str) -> str:
    """Where a consent came from, in words; an unknown source is shown as recorded."""
    kind, _sep, rest = source.partition(":")
    if source in CONSENT_SOURCES:
        return translate(request, CONSENT_SOURCES[source])
    if kind == "register" and rest in CHANNEL_LABELS:
        channel = translate(request, CHANNEL_LABELS[rest])
        return translate(request, N_("At registration ({channel})")).format(channel=channel)
    if kind in audit_labels.ACTOR_LABELS and rest:
        return f"{translate(request, audit_labels.ACTOR_LABELS[kind])} · {rest}"
    return source


def cipher_of(request: Request) -> FieldCipher:
    cipher: FieldCipher = request.app.state.cipher
    return cipher


def ledger_ctx(request: Request, viewer: Viewer) -> ledger.Ctx:
    """The same context the REST API builds for a ledger or tier call."""
    return request_ctx(request, get_session(request), viewer.principal)


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max((self.total + self.size - 1) // self.size, 1)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def _labels() -> dict[str, Any]:
    return {
        "channel_labels": CHANNEL_LABELS,
        "member_type_labels": MEMBER_TYPE_LABELS,
        "gender_labels": GENDER_LABELS,
        "contact_labels": CONTACT_LABELS,
        "posting_labels": POSTING_LABELS,
        "tier_change_labels": TIER_CHANGE_LABELS,
        "tier_reasons": TIER_REASONS,
        "adjustment_status_labels": ADJUSTMENT_STATUS_LABELS,
        "ledger_labels": LEDGER_LABELS,
        "order_status_labels": ORDER_STATUS_LABELS,
        "order_channel_labels": ORDER_CHANNEL_LABELS,
        "statuses": STATUSES,
        **audit_labels.labels(),
    }


# ---- the list --------------------------------------------------------------------------------

#: actions on a selection of members (web.console.members_batch): key → (label, permission)
BATCH_ACTIONS: Final = {
    "tag": (N_("Add a tag"), perm.MEMBERS_WRITE),
    "message": (N_("Send a message"), perm.MEMBERS_WRITE),
    "adjust": (N_("Adjust points (needs approval)"), perm.POINTS_ADJUST),
}
#: the list's sortable columns (``members.service.SEARCH_SORTS``): newest first, others A→Z
MEMBER_SORTING: Final = Sorting(
    "/console/members", {"joined": True, "member_no": False, "name": False}, default="joined"
)


def batch_choices(session: Session, viewer: Viewer) -> dict[str, Any]:
    """The actions this viewer may take on a selection, and the message templates."""
    return {
        "batch_actions": {k: label for k, (label, p) in BATCH_ACTIONS.items() if viewer.can(p)},
        "batch_templates": {t.code: t.name for t in messaging.list_templates(session)},
    }


@router.get("/members")
def member_list(
    request: Request,
    viewer: MembersReader,
    q: Annotated[str, Query(max_length=64)] = "",
    tag: Annotated[str, Query(max_length=32)] = "",
    tier: Annotated[str, Query(max_length=32)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    store: Annotated[str, Query(max_length=32)] = "",
    page: Annotated[int, Query(ge=1, le=COUNT_LIMIT // PAGE_SIZE)] = 1,
    sort: Annotated[str, Query(max_length=16)] = "joined",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "",
) -> HTMLResponse:
    session = get_session(request)
    sort, descending = MEMBER_SORTING.read(sort, direction)
    cipher = cipher_of(request)
    ladder = tiers.get_ladder(session)
    filters = {
        "q": q.strip(),
        "tag": tag.strip(),
        "tier": tier if tier in {t.code for t in ladder.tiers} else "",
        "status": status if status in {s for s, _ in STATUSES} else "",
        "channel": channel if channel in member_domain.CHANNELS else "",
        "store": store.strip(),
    }
    offset = (page - 1) * PAGE_SIZE
    rows, total = members.search(
        session,
        cipher,
        q=filters["q"] or None,
        tag=filters["tag"] or None,
        tier=filters["tier"] or None,
        base_tier=ladder.base.code,
        status=filters["status"] or None,
        channel=filters["channel"] or None,
        store_code=filters["store"] or None,
        limit=PAGE_SIZE,
        offset=offset,
        count_limit=COUNT_LIMIT,
        sort=sort,
        descending=descending,
    )
    full = viewer.can(perm.MEMBERS_PII)
    codes = tiers.codes_of(session, [m.id for m in rows], ladder.base.code)
    names = {t.code: t for t in ladder.tiers}
    items = [
        {"summary": summary, "tier": names.get(codes[m.id], ladder.base)}
        for m, summary in zip(
            rows, members.summaries(session, rows, cipher, full_pii=full), strict=True
        )
    ]
    query = {k: v for k, v in filters.items() if v}
    sorts = MEMBER_SORTING.links(query, sort, descending)
    query.update(MEMBER_SORTING.params(sort, descending))
    partial = request.headers.get("HX-Target") == "results"
    ctx = {
        "nav": "members",
        "filters": filters,
        "query": query,
        "results": items,
        "pager": Pager(page, total),
        "capped": total >= COUNT_LIMIT,
        "ladder": ladder,
        "tags": [] if partial else members.tag_names(session),
        "channels": member_domain.CHANNELS,
        "sorts": sorts,
        **batch_choices(session, viewer),
        **_labels(),
    }
    template = "console/members/_results.html" if partial else "console/members/list.html"
    return render(request, template, ctx)


# ---- one member ------------------------------------------------------------------------------


def detail_context(
    request: Request,
    viewer: Viewer,
    member_no: str,
    *,
    tab: str = "overview",
    page: int = 1,
    rpage: int = 1,
    form: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the member page shows; the action forms re-render it with their errors."""
    session = get_session(request)
    cipher = cipher_of(request)
    if not member_no.isdecimal() or len(member_no) != 10:
        raise NotFound("member_not_found", f"No member with number {member_no}.")
    member = members.get_member(session, member_no)
    tabs = [t for t in TABS if viewer.can(TAB_PERMISSIONS[t])]
    tab = tab if tab in tabs else "overview"
    ctx = ledger_ctx(request, viewer)
    tags = members.tags_of(session, [member.id])[member.id]
    out = members.to_out(session, member, cipher, full_pii=viewer.can(perm.MEMBERS_PII), tags=tags)
    data: dict[str, Any] = {
        "nav": "members",
        "member": out,
        "consents": {c.channel: c for c in out.consents},
        "consent_sources": {c.channel: consent_source(request, c.source) for c in out.consents},
        "tab": tab,
        "tabs": [(t, TAB_LABELS[t]) for t in tabs],
        "form": form,
        "errors": errors or {},
        "values": values or {},
        "full_pii": viewer.can(perm.MEMBERS_PII),
        "manual_tags": {t.name for t in tags if t.kind == "manual"},
        "member_types": member_domain.MEMBER_TYPES,
        "contact_channels": member_domain.CONTACT_CHANNELS,
        "approval_limit": ctx.settings.adjustment_approval_limit,
        **_labels(),
    }
    if viewer.can(perm.TIERS_READ):
        data.update(_tier_context(session, ctx, member.id, viewer.locale))
    if viewer.can(perm.POINTS_READ):
        data.update(_points_summary(session, ctx, member.id))
    if tab == "overview":
        history, history_total = members.consent_history(session, member.id, limit=PAGE_SIZE)
        data["consent_history"] = [(e, consent_source(request, e.source)) for e in history]
        data["consent_history_total"] = history_total
        data["scores"] = member_scores.member_scores(session, member.id)
        data["score_words"] = SCORE_WORDS
        # English names; the catalogue has them (console.analytics.SEGMENT_NAMES).
        data["segment_names"] = {key: en for key, (en, _zh) in rfm.SEGMENTS.items()}
    if tab == "points":
        data.update(_points_context(session, ctx, member.id, page, viewer.locale))
    elif tab == "orders":
        data.update(_orders_context(session, member.id, page, rpage))
    elif tab == "audit":
        data.update(_audit_context(session, member, page, viewer.locale, ctx.tz))
    return data


def _tier_context(session: Session, ctx: ledger.Ctx, member_id: int, locale: str) -> dict[str, Any]:
    ladder = tiers.get_ladder(session)
    state = tiers.state(session, ctx, member_id)
    progress = tier_domain.progress(ladder, state.code, state.window_growth)
    view = summary.build_tier_view(ladder, state, now=ctx.now, tz=ctx.tz, locale=locale)
    changes, changes_total = tiers.history(session, member_id, limit=PAGE_SIZE)
    return {
        "ladder": ladder,
        "tier_names": {t.code: tier_name(t, locale) for t in ladder.tiers},
        "tier": ladder.get(state.code),
        "tier_state": state,
        "tier_view": view,
        "progress": progress,
        "next_tier": ladder.get(progress.next) if progress.next else None,
        "tier_changes": changes,
        "tier_changes_total": changes_total,
        "tier_options": [(t.code, tier_name(t, locale)) for t in ladder.tiers],
    }


def _points_summary(session: Session, ctx: ledger.Ctx, member_id: int) -> dict[str, Any]:
    bal = queries.balance(session, member_id, ctx.now)
    growth_balance, growth_lifetime = growth.balance(session, member_id)
    return {
        "balance": bal,
        "expiry": [(ledger_domain.last_valid_day(at, ctx.tz), n) for at, n in bal.expiry_schedule],
        "growth_balance": growth_balance,
        "growth_lifetime": growth_lifetime,
    }


def _points_context(
    session: Session, ctx: ledger.Ctx, member_id: int, page: int, locale: str
) -> dict[str, Any]:
    offset = (page - 1) * PAGE_SIZE
    postings, total = queries.history(session, member_id, limit=PAGE_SIZE, offset=offset)
    adjustments, _ = queries.adjustments(session, member_id=member_id, limit=PAGE_SIZE)
    ladder = tiers.get_ladder(session)
    names = {t.code: tier_name(t, locale) for t in ladder.tiers}
    return {
        "postings": history_text.lines(session, member_id, postings, names),
        "pager": Pager(page, total),
        "adjustments": adjustments,
    }


def _orders_context(session: Session, member_id: int, page: int, rpage: int) -> dict[str, Any]:
    rows, total = orders.member_orders(
        session, member_id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    returns, rtotal = orders.member_returns(
        session, member_id, limit=PAGE_SIZE, offset=(rpage - 1) * PAGE_SIZE
    )
    return {
        "orders": rows,
        "pager": Pager(page, total),
        "returns": returns,
        "rpager": Pager(rpage, rtotal),
    }


def _audit_context(
    session: Session, member: Any, page: int, locale: str, tz: ZoneInfo
) -> dict[str, Any]:
    records, total = audit.search(
        session, member_no=member.member_no, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    names = {t.code: tier_name(t, locale) for t in tiers.get_ladder(session).tiers}
    shown = audit_labels.rows(session, records, names, tz)
    return {"records": shown, "pager": Pager(page, total)}


@router.get("/members/{member_no}")
def member_detail(
    request: Request,
    member_no: str,
    viewer: MembersReader,
    tab: Annotated[str, Query(max_length=16)] = "overview",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    rpage: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    ctx = detail_context(request, viewer, member_no, tab=tab, page=page, rpage=rpage)
    return render(request, "console/members/detail.html", ctx)
