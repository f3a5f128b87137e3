"""Patron: membership and loyalty platform for retailers."""

__version__ = "0.1.0"
