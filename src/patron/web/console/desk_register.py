"""Console: register a new member at the clerk desk — phone first, everything else optional, so
it takes well under a minute. Registered with channel "store" and the desk's store."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.responses import Response

from patron.errors import Conflict, PatronError
from patron.kit.timeutil import business_tz
from patron.members import service as members
from patron.members.schemas import Consents, MemberCreate
from patron.web.console.desk_common import DESK, cipher, current_store, message, now
from patron.web.console.page_kit import MembersWriter, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    get_session,
    parse_day,
    redirect,
    render,
    translate,
)

router = console_router(full_paths=True)  # full paths: desk.py includes this router
CONSENTS = (
    ("sms", N_("Text messages")),
    ("wechat", N_("WeChat")),
    ("email", N_("Email")),
)
REGISTERED = N_("Member registered. Welcome them and start the sale.")

# Fields of MemberCreate the form shows; a validation error on any other goes to the top.
FORM_FIELDS = {"phone", "name", "birthday"}


def _form(
    request: Request, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    session = get_session(request)
    ctx = {
        "nav": "desk",
        "store": current_store(request, session),
        "values": values,
        "errors": errors,
        "consents": CONSENTS,
    }
    return render(request, "console/desk/register.html", ctx, status=status)


@router.get(DESK + "/register")
def register_form(
    request: Request,
    viewer: MembersWriter,
    phone: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """The form; ``phone`` carries the number a lookup did not find, so it is not typed twice."""
    return _form(request, {"consents": set(), "phone": phone.strip()}, {})


@router.post(DESK + "/register")
def register(
    request: Request,
    viewer: MembersWriter,
    phone: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    birthday: Annotated[str, Form(max_length=20)] = "",
    consent: Annotated[list[str], Form(max_length=10)] = [],  # noqa: B006 - FastAPI form
) -> Response:
    session = get_session(request)
    chosen = {c for c in consent if c in dict(CONSENTS)}
    values: dict[str, Any] = {
        "phone": phone,
        "name": name,
        "birthday": birthday,
        "consents": chosen,
    }
    errors: dict[str, str] = {}
    store = current_store(request, session)
    if store is None:
        errors["form"] = translate(request, N_("Choose the store on the desk first."))
    if not phone.strip():
        errors["phone"] = translate(request, N_("Enter the member's mobile phone number."))
    born: date | None = None
    if birthday.strip():
        try:
            born = parse_day(birthday.strip())
        except ValueError:
            errors["birthday"] = translate(request, N_("Enter the birthday as YYYY-MM-DD."))
    if errors or store is None:
        return _form(request, values, errors, 422)
    try:
        data = MemberCreate(
            phone=phone.strip(),
            channel="store",
            store_code=store.code,
            name=name.strip() or None,
            birthday=born,
            consents=Consents(**{c: c in chosen for c, _label in CONSENTS}),
        )
        member = members.register(
            session,
            viewer.principal,
            cipher(request),
            data,
            now=now(request),
            tz=business_tz(request.app.state.settings.business_timezone),
        )
    except ValidationError as exc:
        for err in exc.errors():
            where = str(err["loc"][0]) if err["loc"] else "form"
            errors[where if where in FORM_FIELDS else "form"] = translate(
                request, N_("Check this field.")
            )
        return _form(request, values, errors, 422)
    except PatronError as exc:
        if isinstance(exc, Conflict) and exc.code == "member_exists":
            values["existing"] = exc.details.get("member_no")
        return _form(request, values, _service_error(request, exc), 422)
    return redirect(request, f"{DESK}?member={member.member_no}", flash=REGISTERED)


def _service_error(request: Request, exc: PatronError) -> dict[str, str]:
    if isinstance(exc, Conflict) and exc.code == "member_exists":
        existing = exc.details.get("member_no", "")
        text = translate(request, N_("This phone number already belongs to member {member_no}."))
        return {"phone": text.format(member_no=existing)}
    if exc.code == "invalid_phone":
        return {"phone": translate(request, N_("This is not a valid mobile phone number."))}
    if exc.code.startswith("birthday"):
        return {"birthday": translate(request, N_("This birthday is not possible."))}
    return {"form": message(request, exc)}
