"""Analytics: the KPI dashboard, computed in the database."""
