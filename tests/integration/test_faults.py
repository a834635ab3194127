"""The cloud misbehaving: throttled and failing Data API calls, lost completion events.

Every file must still load exactly once, without anyone acting (the worker's retries, its
held message and the sweeper recover). A first slice of issue #7's fault injection, using the
emulator's own fault hooks.
"""

from __future__ import annotations

import random

from chalicelib.jobs import JobStatus
from tests.integration.test_autoload import csv_text


def test_throttling_server_errors_and_lost_events_still_load_each_file_once(env, monkeypatch):
    emulator = env.stack.emulator
    injected: list[str] = []
    pick = emulator.faults.pick

    def counted(operation: str):
        fault = pick(operation)
        if fault is not None:
            injected.append(f"{operation}:{fault[1]}")
        return fault

    monkeypatch.setattr(emulator.faults, "pick", counted)
    rng = random.Random(7)
    dropped: list[str] = []

    def lose_some(event):
        if rng.random() < 0.4:
            dropped.append(event["detail"]["statementId"])
            return False
        return None

    ids = list(range(90001, 90031))
    before = {j.id for j in env.jobs("append")}
    emulator.faults.seed(7)
    emulator.faults.throttle_rate, emulator.faults.server_error_rate = 0.15, 0.1
    emulator.event_filter = lose_some
    try:
        for i in ids:
            env.put(f"append/faults/{i}.csv", csv_text(["id", "name", "amount"], [[i, "f", "1.00"]]))

        def all_loaded():
            jobs = [j for j in env.jobs("append") if j.id not in before]
            keys = {f.key for j in jobs if j.status is JobStatus.SUCCEEDED for f in j.files}
            return jobs if all(f"append/faults/{i}.csv" in keys for i in ids) else None

        jobs = env.stack.wait_for(all_loaded, timeout=150, what="every file loaded despite the faults")
    finally:
        emulator.faults.throttle_rate = emulator.faults.server_error_rate = 0.0
        emulator.event_filter = None
    assert injected and dropped, "the faults must actually have happened"
    assert not [j for j in jobs if j.status is JobStatus.FAILED]
    rows = env.rows(f"SELECT id, COUNT(*) FROM it.append_rows WHERE id BETWEEN {ids[0]} AND {ids[-1]} GROUP BY id")
    assert sorted(rows) == [(i, 1) for i in ids]  # each file once
