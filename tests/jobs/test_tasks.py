"""The scheduler's task list (jobs/tasks.py): every job `patron serve` and `patron jobs
scheduler` run is there, and each runs on SQLite and PostgreSQL."""

from __future__ import annotations

from patron.jobs.tasks import SCHEDULE, default_tasks


def test_every_scheduled_job_runs(app, database, settings, clock, make_member):
    make_member()
    tasks = default_tasks(database, app.state.cipher, clock, settings)
    names = [t.name for t in tasks]
    assert len(names) == len(set(names))
    # The schedule the console and doctor judge the jobs by is the one the scheduler runs.
    assert {t.name: t.every_seconds for t in tasks} == SCHEDULE
    # The daily and hourly jobs a single-process deployment relies on, besides the frequent ones.
    assert {
        "webhooks",
        "messages",
        "journeys",
        "expire_points",
        "tiers",
        "points_reminders",
        "coupon_reminders",
        "retention",
        "member_scores",
    } <= set(names)
    for task in tasks:
        task.run()  # raises if a job is broken
    for task in tasks:  # and a second run changes nothing that fails
        task.run()
