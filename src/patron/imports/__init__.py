"""Bulk CSV import: streaming, per-row error report, nothing half-imported from a bad row."""
