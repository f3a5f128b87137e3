"""Durable Idempotency-Key handling for API writes."""
