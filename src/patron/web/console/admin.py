"""Console: staff users, API keys (admins) and the audit log viewer (audit:read).

Every form re-renders its page with the error next to the field and status 422 (the page's
transaction is rolled back, so nothing is written); a success redirects with a flash message,
except a new API key, whose secret is shown once in the response and never again.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from patron.analytics import domain as dates
from patron.audit import service as audit_service
from patron.audit.models import AuditRecord
from patron.auth import permissions as perm
from patron.auth import service as auth_service
from patron.catalog import service as catalog
from patron.config import Settings
from patron.errors import PatronError
from patron.kit import keyset
from patron.tiers import service as tiers
from patron.web.console import audit_labels, exports
from patron.web.console.members import tier_name
from patron.web.console.page_kit import AuditReader, StaffAdmin, console_router
from patron.web.console.sorting import Sorting
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    Viewer,
    get_session,
    parse_day,
    redirect,
    render,
)

router = console_router()

STAFF_URL: Final = CONSOLE_PREFIX + "/admin/staff"
KEYS_URL: Final = CONSOLE_PREFIX + "/admin/keys"
AUDIT_URL: Final = CONSOLE_PREFIX + "/audit"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
AUDIT_PAGE_SIZE: Final = 50
MEMBER_NO = re.compile(r"^[0-9]{10}$")

#: Service error codes → the message shown next to the field (English message ids).
SERVICE_ERRORS: Final = {
    "weak_password": ("password", N_("Use a password of at least 10 characters.")),
    "username_taken": ("username", N_("This username is already taken.")),
    "unknown_role": ("role", N_("Choose a role.")),
    "last_admin": ("role", N_("Patron needs at least one active admin.")),
    "cannot_deactivate_self": ("active", N_("You cannot deactivate your own account.")),
    "unknown_scope": ("scopes", N_("Choose scopes from the list.")),
    "scopes_required": ("scopes", N_("Grant the key at least one scope.")),
}
#: Shown above the form for a refusal without a message of its own.
FALLBACK_MESSAGE: Final = N_("That did not work; nothing was changed.")
MESSAGES: Final = (
    N_("Enter a username: 3 to 64 lowercase letters, digits, dots, dashes or underscores."),
    N_("Enter a display name (at most 100 characters)."),
    N_("Enter a name (at most 100 characters)."),
    N_("Staff user created."),
    N_("Role changed."),
    N_("Store saved."),
    N_("Account deactivated."),
    N_("Account reactivated."),
    N_("Password reset; the user's sessions have ended."),
    N_("API key revoked."),
    N_("Unknown actor."),
    N_("Choose an entity type."),
    N_("Enter a 10-digit member number."),
    N_("Enter a valid date (YYYY-MM-DD)."),
    N_("The start date must not be after the end date."),
)
#: What each API key scope lets an integration do, shown beside its box on the key form.
SCOPE_HELP: Final = {
    perm.MEMBERS_READ: N_("Look members up and read their profile, with phone and email masked."),
    perm.MEMBERS_WRITE: N_("Register members and change their profile, consent and tags."),
    perm.MEMBERS_PII: N_("See phone numbers and email addresses unmasked. Grant it sparingly."),
    perm.POINTS_READ: N_("Read balances, points history and expiry dates."),
    perm.POINTS_WRITE: N_("Spend points at checkout, cancel a spend and handle refunds."),
    perm.POINTS_GRANT: N_(
        "Give points for a reason the integration names, outside the earning rules. "
        "Grant it sparingly: it creates points."
    ),
    perm.TIERS_READ: N_("Read members' tiers and the tier ladder."),
    perm.ORDERS_READ: N_("Read orders and returns."),
    perm.ORDERS_WRITE: N_("Send orders and returns, which earn points by the rules."),
    perm.CATALOG_READ: N_("Read stores, categories and products."),
    perm.CATALOG_WRITE: N_("Create and change stores, categories and products."),
    perm.EVENTS_READ: N_("Page through the event log to catch up on changes."),
    perm.MALL_READ: N_("Read the points mall: gifts, stock and redemption orders."),
    perm.MALL_REDEEM: N_("Redeem gifts for members, verify pickup codes, ship and cancel."),
    perm.MALL_MANAGE: N_("Manage gifts, warehouses and stock, flash sales and lotteries."),
    perm.COUPONS_READ: N_("Read coupon templates and members' coupon wallets."),
    perm.COUPONS_ISSUE: N_("Issue coupons to members, exchange them for points and void them."),
    perm.CAMPAIGNS_READ: N_("Read campaigns, their actions and results."),
    perm.CAMPAIGNS_ACTIONS: N_("Report a member's action (a review, a share) so that it earns."),
    perm.CONTESTS_MANAGE: N_(
        "Create and change UGC contests, moderate their entries and choose the winners, "
        "who are rewarded."
    ),
    perm.CONTESTS_ENTER: N_("Send members' contest entries (text and a photo) for moderation."),
    perm.SEGMENTS_READ: N_("Read saved segments, their previews and counts."),
    perm.SERVICE_READ: N_("Read service tickets, knowledge base articles and satisfaction scores."),
    perm.SERVICE_WRITE: N_(
        "Open, answer, assign and resolve service tickets, and edit knowledge base articles."
    ),
}
#: Scopes that reveal personal data or create points: the form marks them.
SENSITIVE_SCOPES: Final = frozenset({perm.MEMBERS_PII, perm.POINTS_GRANT})
#: a field of one row of the staff table: (staff id, field)
RowErrors = dict[int, dict[str, str]]


def _service_error(exc: PatronError) -> tuple[str, str]:
    return SERVICE_ERRORS.get(exc.code, ("form", FALLBACK_MESSAGE))


def _now(request: Request) -> datetime:
    value: datetime = request.app.state.clock.now()
    return value


# ---- staff users -----------------------------------------------------------------------------


def _staff_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    row_errors: RowErrors | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = {
        "nav": "staff",
        "users": auth_service.list_staff(get_session(request)),
        "roles": perm.ROLES,
        "stores": catalog.list_stores(get_session(request)),
        "errors": errors or {},
        "form": form or {},
        "row_errors": row_errors or {},
    }
    return render(request, "console/admin/staff.html", ctx, status=status)


@router.get("/admin/staff")
def staff_list(request: Request, viewer: StaffAdmin) -> HTMLResponse:
    return _staff_page(request)


@router.post("/admin/staff")
def staff_create(
    request: Request,
    viewer: StaffAdmin,
    username: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=500)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    username = username.strip()
    display_name = display_name.strip()
    errors: dict[str, str] = {}
    if not USERNAME.match(username):
        errors["username"] = (
            "Enter a username: 3 to 64 lowercase letters, digits, dots, dashes or underscores."
        )
    if not display_name or len(display_name) > 100:
        errors["display_name"] = "Enter a display name (at most 100 characters)."
    if role not in perm.ROLES:
        errors["role"] = "Choose a role."
    if len(password) < 10:
        errors["password"] = "Use a password of at least 10 characters."
    form = {"username": username, "display_name": display_name, "role": role}
    if not errors:
        try:
            auth_service.create_staff(
                get_session(request),
                viewer.principal,
                username=username,
                display_name=display_name,
                role=role,
                password=password,
                now=_now(request),
            )
        except PatronError as exc:
            field, message = _service_error(exc)
            errors[field] = message
    if errors:
        return _staff_page(request, errors=errors, form=form, status=422)
    return redirect(request, STAFF_URL, flash="Staff user created.")


def _update_staff(
    request: Request, viewer: Viewer, staff_id: int, changes: dict[str, Any]
) -> PatronError | None:
    try:
        auth_service.update_staff(
            get_session(request), viewer.principal, staff_id, changes=changes, now=_now(request)
        )
    except PatronError as exc:
        if exc.status == 404:
            raise
        return exc
    return None


def _row_failure(request: Request, staff_id: int, field: str, message: str) -> HTMLResponse:
    return _staff_page(request, row_errors={staff_id: {field: message}}, status=422)


@router.post("/admin/staff/{staff_id}/role")
def staff_role(
    request: Request,
    staff_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    viewer: StaffAdmin,
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    if role not in perm.ROLES:
        return _row_failure(request, staff_id, "role", "Choose a role.")
    failed = _update_staff(request, viewer, staff_id, {"role": role})
    if failed is not None:
        return _row_failure(request, staff_id, "role", _service_error(failed)[1])
    return redirect(request, STAFF_URL, flash="Role changed.")


@router.post("/admin/staff/{staff_id}/store")
def staff_store(
    request: Request,
    staff_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    viewer: StaffAdmin,
    store_code: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """The store a staff user works in (a clerk sees that store's figures and orders)."""
    failed = _update_staff(request, viewer, staff_id, {"store_code": store_code.strip() or None})
    if failed is not None:
        message = "Choose a store from the list." if failed.code == "unknown_store" else None
        return _row_failure(request, staff_id, "store", message or _service_error(failed)[1])
    return redirect(request, STAFF_URL, flash="Store saved.")


@router.post("/admin/staff/{staff_id}/active")
def staff_active(
    request: Request,
    staff_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    viewer: StaffAdmin,
    active: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if active not in ("0", "1"):
        return _row_failure(
            request, staff_id, "active", "The form was incomplete; reload the page."
        )
    failed = _update_staff(request, viewer, staff_id, {"is_active": active == "1"})
    if failed is not None:
        return _row_failure(request, staff_id, "active", _service_error(failed)[1])
    flash = "Account reactivated." if active == "1" else "Account deactivated."
    return redirect(request, STAFF_URL, flash=flash)


@router.post("/admin/staff/{staff_id}/password")
def staff_password(
    request: Request,
    staff_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    viewer: StaffAdmin,
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    if len(password) < 10:
        return _row_failure(
            request, staff_id, "password", "Use a password of at least 10 characters."
        )
    failed = _update_staff(request, viewer, staff_id, {"password": password})
    if failed is not None:
        return _row_failure(request, staff_id, "password", _service_error(failed)[1])
    return redirect(request, STAFF_URL, flash="Password reset; the user's sessions have ended.")


# ---- API keys --------------------------------------------------------------------------------


def _keys_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    created: auth_service.CreatedKey | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = {
        "nav": "keys",
        "keys": auth_service.list_api_keys(get_session(request)),
        "scopes": sorted(perm.API_KEY_SCOPES),
        "scope_help": SCOPE_HELP,
        "sensitive_scopes": SENSITIVE_SCOPES,
        "errors": errors or {},
        "form": form or {"scopes": []},
        "created": created,
    }
    return render(request, "console/admin/keys.html", ctx, status=status)


@router.get("/admin/keys")
def keys_list(request: Request, viewer: StaffAdmin) -> HTMLResponse:
    return _keys_page(request)


@router.post("/admin/keys")
def keys_create(
    request: Request,
    viewer: StaffAdmin,
    name: Annotated[str, Form(max_length=500)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=32)] = None,
) -> Response:
    name = name.strip()
    chosen = [s for s in (scopes or []) if s]
    errors: dict[str, str] = {}
    if not name or len(name) > 100:
        errors["name"] = "Enter a name (at most 100 characters)."
    if not chosen:
        errors["scopes"] = "Grant the key at least one scope."
    elif not set(chosen) <= perm.API_KEY_SCOPES:
        errors["scopes"] = "Choose scopes from the list."
    form = {"name": name[:100], "scopes": chosen}
    created = None
    if not errors:
        try:
            created = auth_service.create_api_key(
                get_session(request), viewer.principal, name=name, scopes=chosen, now=_now(request)
            )
        except PatronError as exc:
            field, message = _service_error(exc)
            errors[field] = message
    if errors or created is None:
        return _keys_page(request, errors=errors, form=form, status=422)
    # The secret is only in this response (the database keeps its hash): never cache it, so
    # the back button or a shared cache cannot show it again.
    response = _keys_page(request, created=created)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/admin/keys/{key_id}/revoke")
def keys_revoke(
    request: Request,
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    viewer: StaffAdmin,
) -> Response:
    auth_service.revoke_api_key(get_session(request), viewer.principal, key_id, _now(request))
    return redirect(request, KEYS_URL, flash="API key revoked.")


# ---- audit log -------------------------------------------------------------------------------


def _parse_day(value: str) -> date | None:
    try:
        return parse_day(value.strip())
    except ValueError:
        return None


#: the log's sortable columns (``audit.service.SEARCH_SORTS``): newest first, others A→Z
AUDIT_SORTING: Final = Sorting(
    AUDIT_URL, {c: c == "time" for c in audit_service.SEARCH_SORTS}, default="time"
)


@router.get("/audit")
def audit_log(
    request: Request,
    viewer: AuditReader,
    actor: Annotated[str, Query(max_length=32)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    entity_type: Annotated[str, Query(max_length=32)] = "",
    entity_id: Annotated[str, Query(max_length=64)] = "",
    member: Annotated[str, Query(max_length=64)] = "",
    start_text: Annotated[str, Query(alias="from", max_length=32)] = "",
    end_text: Annotated[str, Query(alias="to", max_length=32)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    fmt: Annotated[str, Query(alias="format", max_length=8)] = "",
    sort: Annotated[str, Query(max_length=16)] = "time",
    direction: Annotated[str, Query(alias="dir", max_length=4)] = "",
) -> Response:
    """The log, filtered and sorted; with ``format=csv|xlsx`` the same records, in the same
    order, as a download."""
    sort, descending = AUDIT_SORTING.read(sort, direction)
    settings: Settings = request.app.state.settings
    tz = ZoneInfo(settings.business_timezone)
    session = get_session(request)
    users = auth_service.list_staff(session)
    errors: dict[str, str] = {}
    actor_type: str | None = None
    actor_id: int | None = None
    if actor:
        kind, _, ident = actor.partition(":")
        if kind == "staff" and ident.isdecimal() and any(u.id == int(ident) for u in users):
            actor_type, actor_id = "staff", int(ident)
        elif kind in audit_service.ACTOR_TYPES and not ident:
            actor_type = kind
        else:
            errors["actor"] = "Unknown actor."
    if entity_type and entity_type not in audit_service.ENTITY_TYPES:
        errors["entity_type"] = "Choose an entity type."
    if member.strip() and not MEMBER_NO.match(member.strip()):
        errors["member"] = "Enter a 10-digit member number."
    start = _parse_day(start_text) if start_text else None
    end = _parse_day(end_text) if end_text else None
    if start_text and start is None:
        errors["from"] = "Enter a valid date (YYYY-MM-DD)."
    if end_text and end is None:
        errors["to"] = "Enter a valid date (YYYY-MM-DD)."
    if start and end and start > end:
        errors["from"] = "The start date must not be after the end date."
    filters = {
        "actor": actor,
        "action": action.strip(),
        "entity_type": entity_type,
        "entity_id": entity_id.strip(),
        "member": member.strip(),
        "from": start_text,
        "to": end_text,
    }
    ctx: dict[str, Any] = {
        "nav": "audit",
        "users": users,
        "actor_types": audit_service.ACTOR_TYPES,
        "entity_types": audit_service.ENTITY_TYPES,
        **audit_labels.labels(),
        "filters": filters,
        "errors": errors,
        "records": [],
        "total": 0,
        "page": page,
        "pages": 1,
    }
    if errors:
        return render(request, "console/admin/audit.html", ctx, status=422)
    search = {
        "entity_type": entity_type or None,
        "entity_id": filters["entity_id"] or None,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "action": filters["action"] or None,
        "member_no": filters["member"] or None,
        "since": dates.day_start_utc(start, tz) if start else None,
        "until": dates.utc_bounds(end, end, tz)[1] if end else None,
        "sort": sort,
        "descending": descending,
    }
    if fmt in exports.FORMATS:

        def rows(
            s: Session, limit: int, offset: int, after: keyset.Seek | None
        ) -> list[AuditRecord]:
            return audit_service.search(
                s,
                limit=limit,
                offset=offset,
                count=False,
                after=after,
                **search,  # type: ignore[arg-type]
            )[0]

        # in the time order (the id's), each batch starts past the last record of the one
        # before; the other sorts page by offset
        walk = (
            None
            if audit_service.SEARCH_SORTS.get(sort, ())
            else audit_service.time_keyset(descending)
        )
        return exports.audit_export(request, viewer, fmt, rows, walk=walk)
    records, total = audit_service.search(
        session,
        limit=AUDIT_PAGE_SIZE,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
        **search,  # type: ignore[arg-type]
    )
    query = {k: v for k, v in filters.items() if v}
    ctx["sorts"] = AUDIT_SORTING.links(query, sort, descending)
    query.update(AUDIT_SORTING.params(sort, descending))
    ctx.update(
        records=audit_labels.rows(session, records, _tier_names(session, viewer.locale), tz),
        total=total,
        pages=max(1, -(-total // AUDIT_PAGE_SIZE)),
        query=query,
    )
    return render(request, "console/admin/audit.html", ctx)


def _tier_names(session: Session, locale: str) -> dict[str, str]:
    return {t.code: tier_name(t, locale) for t in tiers.get_ladder(session).tiers}
