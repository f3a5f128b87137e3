"""Daily check-in (SPEC A3): points per business day with streak bonuses."""
