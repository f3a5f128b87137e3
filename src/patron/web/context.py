"""The request context of an API route, console or portal page: the clock and business
timezone of the app, the caller, and the program settings (``patron.context.build``)."""

from __future__ import annotations

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
