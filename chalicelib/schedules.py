"""Schedule expressions for unloads, copies and archives (pure).

The same two forms EventBridge uses, so a schedule reads the same here as in AWS:
`rate(15 minutes)`, `rate(1 hour)`, `rate(7 days)`, and `cron(min hour day-of-month month
day-of-week year)`, e.g. `cron(0 3 * * ? *)` = every day at 03:00 UTC. The sweeper runs
every minute and starts a run for the latest due time it has not started yet (the run's id
comes from that time, so two sweepers never start it twice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_DOW_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTH_NAMES = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
# (name, low, high, names) of the six cron fields, in order
_FIELDS = (("minutes", 0, 59, {}), ("hours", 0, 23, {}), ("day-of-month", 1, 31, {}),
           ("month", 1, 12, _MONTH_NAMES), ("day-of-week", 1, 7, _DOW_NAMES), ("year", 1970, 2199, {}))


class ScheduleError(ValueError):
    """An expression that is not a valid rate() or cron()."""


@dataclass(frozen=True)
class Schedule:
    text: str
    period_seconds: int | None = None                  # rate()
    fields: tuple[frozenset[int] | None, ...] = ()     # cron(): allowed values per field, None = any

    def due(self, now: float, window_seconds: int) -> float | None:
        """The latest due time in (now - window, now], or None (whole minutes, UTC)."""
        minute = int(now // 60) * 60
        if self.period_seconds:
            latest = int(now // self.period_seconds) * self.period_seconds
            return float(latest) if now - latest < window_seconds else None
        t = minute
        while now - t < window_seconds:
            if self._matches(datetime.fromtimestamp(t, tz=UTC)):
                return float(t)
            t -= 60
        return None

    def _matches(self, at: datetime) -> bool:
        dow = (at.isoweekday() % 7) + 1  # cron: 1 = Sunday
        values = (at.minute, at.hour, at.day, at.month, dow, at.year)
        return all(allowed is None or v in allowed for allowed, v in zip(self.fields, values))


def parse_schedule(text: str) -> Schedule:
    """`rate(1 day)` or `cron(0 3 * * ? *)`; ScheduleError says what is wrong."""
    raw = text.strip()
    rate = _RATE.match(raw)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if count < 1:
            raise ScheduleError(f"{text!r}: a rate needs a positive number")
        if (count == 1) != (not rate.group(2).endswith("s")):
            raise ScheduleError(f"{text!r}: write 'rate(1 {unit})' or 'rate(N {unit}s)'")
        return Schedule(raw, period_seconds=count * _UNIT_SECONDS[unit])
    cron = _CRON.match(raw)
    if not cron:
        raise ScheduleError(f"{text!r} is not a schedule: use rate(N minutes|hours|days) or "
                            "cron(minutes hours day-of-month month day-of-week year)")
    parts = cron.group(1).split()
    if len(parts) != 6:
        raise ScheduleError(f"{text!r}: cron() needs 6 fields (minutes hours day-of-month month day-of-week "
                            f"year), got {len(parts)}")
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ScheduleError(f"{text!r}: exactly one of day-of-month and day-of-week must be '?'")
    fields = tuple(_parse_field(text, part, *spec) for part, spec in zip(parts, _FIELDS))
    return Schedule(raw, fields=fields)


def _parse_field(text: str, part: str, name: str, low: int, high: int,
                 names: dict[str, int]) -> frozenset[int] | None:
    if part in ("*", "?"):
        return None
    values: set[int] = set()
    for item in part.split(","):
        step = 1
        if "/" in item:
            item, step_text = item.split("/", 1)
            step = _number(text, name, step_text, 1, high, {})
        if item in ("*", ""):
            first, last = low, high
        elif "-" in item:
            a, b = item.split("-", 1)
            first, last = _number(text, name, a, low, high, names), _number(text, name, b, low, high, names)
            if first > last:
                raise ScheduleError(f"{text!r}: {name} range {item!r} runs backwards")
        else:
            first = _number(text, name, item, low, high, names)
            last = high if step > 1 else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, name: str, raw: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(raw.upper())
    if value is None:
        if not raw.isdigit():
            raise ScheduleError(f"{text!r}: {name} value {raw!r} is not a number"
                                + (f" or one of {', '.join(names)}" if names else ""))
        value = int(raw)
    if not low <= value <= high:
        raise ScheduleError(f"{text!r}: {name} value {value} is outside {low}..{high}")
    return value
