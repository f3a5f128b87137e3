"""Settings sections: a frozen section parsed once is shared by later units of work until its
stored JSON changes (program/service.py); a section whose model can be changed never is."""

from __future__ import annotations

from datetime import UTC, datetime

from patron.auth.principal import Principal
from patron.ledger.service import PointsSettings
from patron.orders.pricing import PricingSettings
from patron.program import service as program

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ADMIN = Principal.system("test")


def _read(database, key, model):
    with database.unit_of_work() as s:
        program.preload(s, {key: model})
        return program.get_section(s, key, model)


def test_a_frozen_section_is_shared_until_its_stored_value_changes(database):
    first = _read(database, "pricing", PricingSettings)
    assert _read(database, "pricing", PricingSettings) is first  # parsed once
    with database.unit_of_work() as s:
        changed = first.model_copy(update={"points_per_unit": first.points_per_unit + 1})
        program.put_section(s, ADMIN, "pricing", changed, now=NOW)
    seen = _read(database, "pricing", PricingSettings)
    assert seen.points_per_unit == first.points_per_unit + 1  # the change is seen at once
    assert _read(database, "pricing", PricingSettings) is seen
    # A change written behind the service's back (another process, a restore) is seen too.
    with database.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("DELETE FROM program_settings WHERE key = 'pricing'"))
    assert _read(database, "pricing", PricingSettings) == PricingSettings()


def test_a_section_whose_model_can_change_is_parsed_for_each_unit_of_work(database):
    assert not PointsSettings.model_config.get("frozen")
    assert _read(database, "points", PointsSettings) is not _read(
        database, "points", PointsSettings
    )
