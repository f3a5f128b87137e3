from patron.jobs.scheduler import Scheduler, Task


def test_due_tasks_run_and_a_failure_does_not_stop_the_others():
    calls = []

    def boom():
        raise RuntimeError("x")

    s = Scheduler(
        [
            Task("a", 60, lambda: calls.append("a")),
            Task("b", 60, boom),
            Task("c", 60, lambda: calls.append("c")),
        ]
    )
    assert s.run_due() == ["a", "b", "c"]
    assert calls == ["a", "c"]
    # Not due again until their interval has passed.
    assert s.run_due() == []


def test_scheduler_thread_starts_and_stops():
    s = Scheduler([Task("a", 3600, lambda: None)], tick_seconds=0.01)
    s.start()
    s.stop()
    assert s._thread is None
