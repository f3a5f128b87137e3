"""Operator-editable program settings (tier ladder, expiry policy, earning rules...)."""
