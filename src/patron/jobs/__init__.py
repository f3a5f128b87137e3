"""Scheduled work: the in-process scheduler of ``patron serve`` and its tasks."""
