"""rate() and cron() schedules: parsing errors name the problem; due times are whole minutes in a window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.schedules import ScheduleError, parse_schedule


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("expr", "now", "due"), [
    ("rate(1 day)", "2026-11-30 00:00:40", "2026-11-30 00:00:00"),
    ("rate(15 minutes)", "2026-11-30 10:31:00", "2026-11-30 10:30:00"),
    ("rate(2 hours)", "2026-11-30 10:05:00", "2026-11-30 10:00:00"),
    ("cron(0 3 * * ? *)", "2026-11-30 03:04:59", "2026-11-30 03:00:00"),
    ("cron(*/20 8-17 ? * MON-FRI *)", "2026-11-30 09:41:00", "2026-11-30 09:40:00"),  # a Monday
    ("cron(0 12 1 JAN,JUL ? 2026-2030)", "2027-07-01 12:00:10", "2027-07-01 12:00:00"),
])
def test_due_times(expr: str, now: str, due: str) -> None:
    assert parse_schedule(expr).due(at(now), 15 * 60) == at(due)


@pytest.mark.parametrize(("expr", "now"), [
    ("rate(1 day)", "2026-11-30 00:20:00"),            # missed by more than the window
    ("cron(0 3 * * ? *)", "2026-11-30 04:00:00"),
    ("cron(*/20 8-17 ? * MON-FRI *)", "2026-11-29 09:40:00"),  # a Sunday
])
def test_not_due(expr: str, now: str) -> None:
    assert parse_schedule(expr).due(at(now), 15 * 60) is None


@pytest.mark.parametrize(("expr", "message"), [
    ("every day", "is not a schedule"),
    ("rate(0 minutes)", "positive number"),
    ("rate(1 minutes)", "write 'rate(1 minute)'"),
    ("rate(5 minute)", "write 'rate(1 minute)' or 'rate(N minutes)'"),
    ("cron(0 3 * * *)", "needs 6 fields"),
    ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(61 3 * * ? *)", "minutes value 61 is outside 0..59"),
    ("cron(0 3 ? * FUNDAY *)", "day-of-week value 'FUNDAY' is not a number or one of SUN"),
    ("cron(0 5-3 * * ? *)", "range '5-3' runs backwards"),
])
def test_invalid_schedules_say_why(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
                       .replace("*", r"\*").replace(".", r"\.")):
        parse_schedule(expr)
