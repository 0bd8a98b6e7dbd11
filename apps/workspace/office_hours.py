"""Office hours of an inbox: a time zone, weekly opening intervals and holidays.

`Inbox.office_hours` is `{"mon": [["09:00", "17:00"]], "tue": [...], ...}` (local times of
`Inbox.time_zone`, start inclusive, end exclusive, "24:00" for midnight); an empty mapping means
always open. `Inbox.holidays` is a list of local dates ("2026-12-25") on which it stays closed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from typing import Any

from apps.core.errors import ApplicationError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
# How far ahead `next_open` looks (a fortnight covers any weekly plan with holidays).
LOOKAHEAD_DAYS = 21
MAX_HOLIDAYS = 400


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def zone_validate(name: str) -> str:
    name = (name or "").strip() or "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ApplicationError(
            f"{name!r} is not a time zone (use a name such as Europe/Berlin).",
            {"field": "time_zone"},
        ) from exc
    return name


def hours_validate(value: Any) -> dict[str, list[list[str]]]:
    """The weekly hours, normalised (sorted, no overlaps), or ApplicationError."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or set(value) - set(DAYS):
        raise ApplicationError(
            f"office_hours maps days ({', '.join(DAYS)}) to lists of [start, end] times.",
            {"field": "office_hours"},
        )
    cleaned: dict[str, list[list[str]]] = {}
    for day in DAYS:
        intervals = value.get(day) or []
        if not isinstance(intervals, list) or len(intervals) > 12:
            raise ApplicationError(f"office_hours.{day} must be a list of [start, end] pairs.")
        pairs = []
        for pair in intervals:
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or not all(isinstance(t, str) and _TIME.match(t) for t in pair)
                or _minutes(pair[0]) >= _minutes(pair[1])
            ):
                raise ApplicationError(
                    f'office_hours.{day}: each interval is ["HH:MM", "HH:MM"], start before '
                    'end ("24:00" for midnight).',
                    {"field": "office_hours"},
                )
            pairs.append([pair[0], pair[1]])
        pairs.sort(key=lambda p: _minutes(p[0]))
        for earlier, later in itertools.pairwise(pairs):
            if _minutes(later[0]) < _minutes(earlier[1]):
                raise ApplicationError(f"office_hours.{day}: intervals overlap.")
        if pairs:
            cleaned[day] = pairs
    return cleaned


def holidays_validate(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or len(value) > MAX_HOLIDAYS:
        raise ApplicationError(
            f"holidays is a list of at most {MAX_HOLIDAYS} dates.", {"field": "holidays"}
        )
    days = set()
    for item in value:
        try:
            days.add(dt.date.fromisoformat(str(item)).isoformat())
        except ValueError as exc:
            raise ApplicationError(
                f"{item!r} is not a date (YYYY-MM-DD).", {"field": "holidays"}
            ) from exc
    return sorted(days)


def _zone(inbox: Any) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(inbox.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _intervals(inbox: Any, day: dt.date) -> list[tuple[int, int]]:
    if day.isoformat() in set(inbox.holidays or []):
        return []
    pairs = (inbox.office_hours or {}).get(DAYS[day.weekday()]) or []
    return [(_minutes(start), _minutes(end)) for start, end in pairs]


def has_hours(inbox: Any) -> bool:
    return bool(inbox.office_hours)


def is_open(inbox: Any, at: dt.datetime) -> bool:
    """Whether the inbox's team is in at `at` (always, without office hours)."""
    if not has_hours(inbox):
        return True
    local = at.astimezone(_zone(inbox))
    now = local.hour * 60 + local.minute
    return any(start <= now < end for start, end in _intervals(inbox, local.date()))


def next_open(inbox: Any, at: dt.datetime) -> dt.datetime | None:
    """When the team is next in (aware, in the inbox's time zone); `at` itself when open now,
    None when no opening lies within three weeks."""
    if is_open(inbox, at):
        return at.astimezone(_zone(inbox))
    zone = _zone(inbox)
    local = at.astimezone(zone)
    now = local.hour * 60 + local.minute
    for offset in range(LOOKAHEAD_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        for start, _end in sorted(_intervals(inbox, day)):
            if offset == 0 and start <= now:
                continue
            # Wall-clock time in the zone; across a DST gap zoneinfo picks the later side.
            opening = dt.datetime.combine(day, dt.time(start // 60, start % 60), tzinfo=zone)
            return opening
    return None


def describe(when: dt.datetime, *, now: dt.datetime) -> str:
    """ "today at 09:00", "tomorrow at 09:00" or "on Monday 3 August at 09:00", plus the zone."""
    local_now = now.astimezone(when.tzinfo)
    days = (when.date() - local_now.date()).days
    clock = f"{when:%H:%M}"
    if days == 0:
        day = "today"
    elif days == 1:
        day = "tomorrow"
    else:
        day = f"on {DAY_NAMES[when.weekday()]} {when.day} {when:%B}"
    return f"{day} at {clock} ({when.tzinfo.key if hasattr(when.tzinfo, 'key') else 'UTC'})"
