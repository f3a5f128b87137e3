"""The context of a request or job — who acts, when, in which business timezone, and the
program settings — built in one place (``build``) and passed down to the services.

Building it reads every program section the write paths use (points, pricing, earning, tiers)
with one statement into the unit of work's cache, so no service reads a section again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.orders.pricing import PricingSettings
from patron.program import service as program_service
from patron.rules.definitions import CampaignWindows, EarningRules
from patron.tiers import service as tiers
from patron.tiers.domain import TierLadder

PRICING_SECTION: Final = "pricing"
EARNING_SECTION: Final = "earning"
#: written by the campaigns (``patron.campaigns.service.compile_windows``), read with the rules
CAMPAIGN_WINDOWS_SECTION: Final = "campaign_windows"
#: the program sections a context preloads (every section an order reads)
SECTIONS: Final[dict[str, type[BaseModel]]] = {
    ledger.SECTION: ledger.PointsSettings,
    PRICING_SECTION: PricingSettings,
    EARNING_SECTION: EarningRules,
    CAMPAIGN_WINDOWS_SECTION: CampaignWindows,
    tiers.SECTION: TierLadder,
}


def build(
    session: Session,
    actor: Principal,
    now: datetime,
    tz: ZoneInfo,
    extra: Mapping[str, type[BaseModel]] | None = None,
) -> Ctx:
    """The context: the sections are read once (one statement) for the unit of work. A domain
    whose writes read a section of its own (the mall's settings) passes it as ``extra`` so it
    comes with the same statement."""
    program_service.preload(session, {**SECTIONS, **extra} if extra else SECTIONS)
    return Ctx(actor=actor, now=now, tz=tz, settings=ledger.get_points_settings(session))
