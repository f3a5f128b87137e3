"""Append-only audit trail of every change made by staff or an integration."""
