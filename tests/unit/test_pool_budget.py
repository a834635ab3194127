"""devstack's per-database connection pools share one budget of idle connections."""

from __future__ import annotations

from types import SimpleNamespace

from devstack.redshift.sessions import IdleBudget, Pool


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False
        self.broken = False
        self.info = SimpleNamespace(transaction_status=None)

    def execute(self, sql: str) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_idle_connections_of_many_databases_stay_within_one_budget() -> None:
    budget = IdleBudget(limit=5)
    pools = [Pool(FakeConnection, budget) for _ in range(40)]  # a test session meets many databases
    handed_back = []
    for pool in pools:
        conns = [pool.acquire() for _ in range(3)]
        for c in conns:
            pool.release(c)  # type: ignore[arg-type]
        handed_back += conns
    kept = [c for c in handed_back if not c.closed]
    assert len(kept) == 5 and budget.used == 5  # before the budget: 40 x 3 = 120 open idle connections
    assert all(c in handed_back[-5:] for c in kept)  # the databases used last keep theirs
    reused = pools[-1].acquire()
    assert not reused.closed and budget.used == 4
    for pool in pools:
        pool.close()
    assert budget.used == 0 and not [c for c in handed_back if not c.closed and c is not reused]
