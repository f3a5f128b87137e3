"""The operator console and the clerk desk, under /console. Each area is one module with its
own router; they call services, never SQL."""

from __future__ import annotations

from fastapi import APIRouter

from patron.web.console import admin, auth, config, dashboard, desk, members

router = APIRouter()
for _module in (auth, dashboard, members, config, desk, admin):
    router.include_router(_module.router)
