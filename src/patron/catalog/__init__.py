"""Stores, product categories and products with member prices (SPEC D1, C4)."""
