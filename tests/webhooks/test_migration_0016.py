"""Upgrading drops the receivers' replies that earlier versions kept in the delivery log."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from patron.migrate import upgrade


def test_upgrade_replaces_stored_replies_by_error_classes(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0011_otp_source")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, url, description, secret_enc, events, "
                "is_active, created_at) VALUES (1, 'http://10.0.0.1/', '', x'00', "
                "'[\"order.recorded\"]', 1, '2026-03-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO webhook_events (id, event_type, payload, created_at) "
                "VALUES (1, 'order.recorded', '{}', '2026-03-01 00:00:00')"
            )
        )
        for i, (code, error) in enumerate(
            [
                (500, "<html>internal admin: password hunter2</html>"),
                (None, "ConnectError: [Errno 111] Connection refused 10.0.0.1"),
                (None, "endpoint removed or inactive"),
                (200, None),
            ],
            start=1,
        ):
            conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, "
                    "next_attempt_at, last_status_code, last_error) "
                    "VALUES (:i, 1, 1, 'dead', 1, '2026-03-01 00:00:00', :c, :e)"
                ),
                {"i": i, "c": code, "e": error},
            )
            if i < 4:  # one delivery per (endpoint, event): the rest use events of their own
                conn.execute(
                    text(
                        "INSERT INTO webhook_events (id, event_type, payload, created_at) "
                        "VALUES (:n, 'order.recorded', '{}', '2026-03-01 00:00:00')"
                    ),
                    {"n": i + 1},
                )
                conn.execute(
                    text("UPDATE webhook_deliveries SET event_id = :n WHERE id = :i"),
                    {"n": i + 1, "i": i},
                )
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT last_error, last_duration_ms FROM webhook_deliveries ORDER BY id")
        ).all()
    engine.dispose()
    assert rows == [
        ("http_status", None),
        ("transport_error", None),
        ("endpoint_inactive", None),
        (None, None),
    ]
