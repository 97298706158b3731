"""When a secret rotates next: ``AutomaticallyAfterDays``, ``rate(N days|hours)`` or ``cron(...)``.

Cron expressions are AWS's six fields (minutes hours day-of-month month day-of-week year) with ``*``,
``?``, lists, ranges and ``/`` steps; day-of-week runs 1-7 from Sunday and accepts SUN-SAT; month
accepts JAN-DEC. ``L``, ``W`` and ``#`` are not supported (``parse`` refuses them).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

DAY = 86400.0
_RATE = re.compile(r"rate\((\d+) (day|days|hour|hours)\)")
_CRON = re.compile(r"cron\((.+)\)")
_MONTHS = {m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: "?" or "*" (any)
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday
    years: frozenset[int] | None

    def matches_day(self, d: dt.date) -> bool:
        if d.month not in self.months or (self.years is not None and d.year not in self.years):
            return False
        if self.days is not None and d.day not in self.days:
            return False
        weekday = (d.isoweekday() % 7) + 1  # Sunday -> 1
        return self.weekdays is None or weekday in self.weekdays


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None = None, any_ok: bool = True
           ) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None if any_ok else frozenset(range(lo, hi + 1))
    out: set[int] = set()

    def value(v: str) -> int:
        if names and v.upper() in names:
            return names[v.upper()]
        if not v.isdigit():
            raise ScheduleError(f"invalid cron value {v!r}")
        return int(v)

    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"invalid cron step {step_text!r}")
            step = int(step_text)
        if part in ("*", ""):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = value(a), value(b)
        else:
            start = value(part)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi and start <= end):
            raise ScheduleError(f"cron value out of range in {text!r}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


def parse_cron(expr: str) -> Cron:
    m = _CRON.fullmatch(expr.strip())
    if m is None:
        raise ScheduleError("not a cron expression")
    fields = m.group(1).split()
    if len(fields) != 6 or any(c in "".join(fields) for c in "LW#"):
        raise ScheduleError("cron expressions have six fields; L, W and # are not supported")
    minutes = _field(fields[0], 0, 59, any_ok=False)
    hours = _field(fields[1], 0, 23, any_ok=False)
    assert minutes is not None and hours is not None
    months = _field(fields[3], 1, 12, _MONTHS, any_ok=False)
    assert months is not None
    return Cron(minutes, hours, _field(fields[2], 1, 31), months, _field(fields[4], 1, 7, _DAYS),
                _field(fields[5], 1970, 2199))


def validate(schedule: str) -> None:
    """Raise ScheduleError unless ``schedule`` is a rate() or cron() expression auroral can run."""
    m = _RATE.fullmatch(schedule.strip())
    if m is not None:
        n = int(m.group(1))
        if n < 1 or (m.group(2).startswith("hour") and n < 4) or (m.group(2).startswith("day") and n > 1000):
            raise ScheduleError("rate must be 4 to 23 hours or 1 to 1000 days")
        return
    parse_cron(schedule)


def next_after(after: float, *, every_days: int | None, schedule: str | None) -> float | None:
    """The first rotation time after ``after`` (epoch seconds)."""
    if schedule:
        m = _RATE.fullmatch(schedule.strip())
        if m is not None:
            unit = DAY if m.group(2).startswith("day") else 3600.0
            return after + int(m.group(1)) * unit
        return _next_cron(parse_cron(schedule), after)
    if every_days:
        return after + every_days * DAY
    return None


def _next_cron(cron: Cron, after: float) -> float | None:
    start = dt.datetime.fromtimestamp(after, dt.UTC).replace(second=0, microsecond=0)
    day = start.date()
    for _ in range(366 * 5):
        if cron.matches_day(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    when = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
                    if when.timestamp() > after:
                        return when.timestamp()
        day += dt.timedelta(days=1)
    return None
