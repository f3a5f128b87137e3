"""Realistic synthetic data for trying Patron."""
