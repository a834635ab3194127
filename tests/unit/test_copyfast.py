"""COPY's fast path: the byte-level checks that send data to the careful path, across chunk edges."""

from __future__ import annotations

import io

import pytest

from devstack.redshift import copyfast
from devstack.redshift.copyfast import Fallback, FastPlan, _checked, _Prefetch
from devstack.redshift.copyopts import parse_copy


def plan(max_scale: int | None = None, ascii_only: bool = False) -> FastPlan:
    return FastPlan(statement=None, ascii_only=ascii_only, max_scale=max_scale, text_format=False)  # type: ignore[arg-type]


def chunks(data: bytes, fast: FastPlan, ignore_header: int = 0) -> tuple[bytes, list[int]]:
    import re

    scale = re.compile(rb"\.\d{%d,}" % (fast.max_scale + 1)) if fast.max_scale is not None else None
    lines: list[int] = []
    out = b"".join(_checked(io.BytesIO(data), fast, scale, ignore_header, lines))
    return out, lines


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(copyfast, "CHUNK", 4)  # every interesting sequence straddles a chunk edge


@pytest.mark.parametrize("data,fast", [
    (b"1,a\\N\n", plan()),                   # Redshift's NULL marker, cut between its two bytes
    (b"1,2.12345\n", plan(max_scale=2)),      # a fraction longer than the column's scale
    (b"1,\xc3\xa9\n", plan(ascii_only=True)),  # a VARCHAR(n) counts bytes in Redshift
])
def test_what_the_fast_path_cannot_judge_is_seen_across_chunk_edges(data, fast):
    with pytest.raises(Fallback):
        chunks(data, fast)


def test_lines_header_and_a_missing_final_newline():
    out, lines = chunks(b"h1,h2\nh3\n1,2.5\n3,4", plan(max_scale=2), ignore_header=2)
    assert out == b"1,2.5\n3,4\n" and lines == [2]


def test_prefetch_hands_on_items_and_the_producers_error():
    def items():
        yield b"a"
        yield b"b"
        raise Fallback()

    got = []
    with pytest.raises(Fallback):
        for item in _Prefetch(items()):
            got.append(item)
    assert got == [b"a", b"b"]


def test_prefetch_close_stops_a_producer_waiting_on_a_full_queue():
    produced = []

    def items():
        for n in range(100):
            produced.append(n)
            yield b"x"

    prefetch = _Prefetch(items())
    next(iter(prefetch))
    prefetch.close()
    assert len(produced) < 100


def test_plan_refuses_options_only_the_careful_path_knows():
    spec = parse_copy("COPY t FROM 's3://b/k' IAM_ROLE default CSV EMPTYASNULL")
    assert copyfast.plan(spec, None, []) is None  # type: ignore[arg-type]


class _Stream(io.BytesIO):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name.encode())
        self.name, self.log = name, log

    def close(self) -> None:
        if not self.closed:
            self.log.append(f"closed {self.name}")
        super().close()


def test_objects_are_opened_ahead_but_handed_out_in_order_and_leftovers_closed():
    import time

    log: list[str] = []

    def open_object(name: str):
        log.append(f"start {name}")
        if name == "a":
            time.sleep(0.3)  # a slow first GET: the next ones are requested meanwhile
        log.append(f"opened {name}")
        if name == "missing":
            return None
        if name == "broken":
            raise OSError("NoSuchKey: broken")
        return _Stream(name, log)

    opened = copyfast.opened_in_order(["a", "b", "missing", "c", "broken", "d", "e"], open_object, ahead=3)
    assert next(opened).read() == b"a"
    assert log.index("start b") < log.index("opened a") and log.index("start missing") < log.index("opened a")
    assert [s.read() if s else None for s in (next(opened), next(opened), next(opened))] == [b"b", None, b"c"]
    with pytest.raises(OSError, match="broken"):  # an open error reaches the reader in its file's turn
        next(opened)
    # the reader gives up: "d" (and "e", unless its request was cancelled before it started) was opened
    # ahead and never read, and is closed
    assert "opened d" in log and "closed d" in log
    assert ("opened e" in log) == ("closed e" in log)
