"""Journeys: triggers that enter members, steps they walk through, their recorded paths."""
