"""Earning rules: rules as operator-edited data and the pure engine that applies them."""
