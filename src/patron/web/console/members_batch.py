"""Console: actions on the members ticked in the list — tag, message, points adjustment (the
rules are in ``members.batch``). A refused batch comes back as a page that keeps the selection
and says what to change, next to the field; nothing is written then."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Form, Request
from fastapi.responses import Response

from patron.errors import Forbidden, PatronError
from patron.members import batch
from patron.web.console.member_actions import parse_amount
from patron.web.console.members import BATCH_ACTIONS, batch_choices, ledger_ctx
from patron.web.console.page_kit import MembersReader, console_router
from patron.web.i18n import N_
from patron.web.pages import (
    CONSOLE_PREFIX,
    get_session,
    redirect,
    render,
    request_locale,
)

router = console_router()

#: service error code → (field, message id)
MESSAGES: Final = {
    "batch_empty": ("members", N_("Select at least one member in the list.")),
    "batch_too_large": ("members", N_("Select at most 100 members at a time.")),
    "batch_duplicate": ("members", N_("A member was selected twice; reload the list.")),
    "batch_unknown_members": ("members", N_("These member numbers do not exist: %(members)s.")),
    "batch_erased_members": (
        "members",
        N_("These members' data was erased, so they cannot be included: %(members)s."),
    ),
    "batch_overdraw": ("amount", N_("These members have fewer points than that: %(members)s.")),
    "invalid_tag": (
        "tag",
        N_("A tag is 1-32 letters, digits, spaces or . & + - _ and starts with a letter or digit."),
    ),
    "rule_tag": ("tag", N_("This tag is computed by a rule and cannot be set by hand.")),
    "message_template_not_found": ("template", N_("Choose a message template from the list.")),
    "invalid_message": ("text", N_("Write a message of 1 to 500 characters.")),
    "message_template_variable": (
        "text",
        N_("The message uses a variable that does not exist; use those listed below it."),
    ),
    "message_template_invalid": ("text", N_("A {{ or }} in the message is not closed.")),
    "invalid_amount": ("amount", N_("Enter a whole number that is not zero.")),
    "reason_required": ("reason", N_("Give a reason.")),
}
FLASHES: Final = {
    "tag": N_("The selected members were tagged."),
    "message": N_(
        "The message is queued for the selected members; it goes to those who agreed to "
        "receive messages, on their own channel."
    ),
    "adjust": N_("One adjustment per selected member now waits for approval."),
}
FALLBACK: Final = N_("That did not work; nothing was changed.")
MAX_BACK: Final = 2000


def _back(value: str) -> str:
    """Where to return: the member list with its filters, never another site."""
    url = value.strip()
    if url.startswith(CONSOLE_PREFIX + "/members") and len(url) <= MAX_BACK and "\\" not in url:
        return url
    return CONSOLE_PREFIX + "/members"


@router.post("/members/batch")
def run_batch(
    request: Request,
    viewer: MembersReader,
    member: Annotated[list[str] | None, Form()] = None,
    action: Annotated[str, Form(max_length=16)] = "",
    tag: Annotated[str, Form(max_length=200)] = "",
    template: Annotated[str, Form(max_length=40)] = "",
    text: Annotated[str, Form(max_length=2000)] = "",
    amount: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=MAX_BACK)] = "",
) -> Response:
    selected = member or []
    values = {
        "action": action, "tag": tag, "template": template, "text": text,
        "amount": amount, "reason": reason,
    }  # fmt: skip
    errors: dict[str, str] = {}
    if action not in BATCH_ACTIONS:
        errors["action"] = N_("Choose what to do with the selected members.")
    elif not viewer.can(BATCH_ACTIONS[action][1]):
        raise Forbidden(
            "forbidden",
            "Your role does not allow this action on members.",
            details={"permission": BATCH_ACTIONS[action][1]},
        )
    value: int | None = None
    if action == "adjust":
        value, problem = parse_amount(amount)
        if problem:
            errors["amount"] = problem
        if not reason.strip():
            errors["reason"] = N_("Give a reason.")
        elif len(reason.strip()) > 200:
            errors["reason"] = N_("Enter at most 200 characters.")
    placeholders: dict[str, str] = {}
    session = get_session(request)
    if not errors:
        now = request.app.state.clock.now()
        try:
            if action == "tag":
                batch.tag(session, viewer.principal, selected, tag, now=now)
            elif action == "message":
                batch.message(
                    session, viewer.principal, selected,
                    template=template or None, text=text, now=now, locale=request_locale(request),
                )  # fmt: skip
            else:
                assert value is not None
                batch.adjust(
                    session, ledger_ctx(request, viewer), selected,
                    amount=value, reason=reason.strip(),
                )  # fmt: skip
        except PatronError as exc:
            field, message = MESSAGES.get(exc.code, ("form", FALLBACK))
            errors[field] = message
            named = exc.details.get("members") if exc.details else None
            if isinstance(named, list):
                placeholders[field] = ", ".join(str(n) for n in named)
    if errors:
        ctx: dict[str, Any] = {
            "nav": "members",
            "selected": selected,
            "values": values,
            "errors": errors,
            "placeholders": placeholders,
            **batch_choices(session, viewer),
            "back": _back(back),
        }
        return render(request, "console/members/batch.html", ctx, status=422)
    return redirect(request, _back(back), flash=FLASHES[action])
