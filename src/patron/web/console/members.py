"""Console: members pages."""

from __future__ import annotations

from patron.web.pages import CONSOLE_PREFIX, page_router

router = page_router(CONSOLE_PREFIX)
