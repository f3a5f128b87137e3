"""Orders: checkout pricing, order ingestion, returns."""
