"""Segments: a rule tree over members compiled to one SQL select, and lifecycle stages."""
