"""The request context of an API route, console or portal page: the clock and business
timezone of the app, the caller, and the program settings (``patron.context.build``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from patron import context
from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.ledger.service import Ctx


def request_ctx(
    request: Request,
    session: Session,
    actor: Principal,
    extra: Mapping[str, type[BaseModel]] | None = None,
) -> Ctx:
    state = request.app.state
    return context.build(
        session, actor, state.clock.now(), business_tz(state.settings.business_timezone), extra
    )


DEVICE_HEADER = "X-Device-Id"
_DEVICE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def device_id(request: Request) -> str | None:
    """The device a request says it comes from (an app's installation id or a fingerprint,
    header ``X-Device-Id``); None when absent or not 1-64 letters, digits, ``. _ : -``."""
    value = (request.headers.get(DEVICE_HEADER) or "").strip()
    return value if _DEVICE.match(value) else None
