"""Signed webhook deliveries of order, points and tier events to integrators (outbox pattern)."""
