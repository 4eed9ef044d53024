"""A date poll as every page shows it (the grid, the manage page, the presenter view): IANA time
zones, the options as columns in a reader's zone and language, the totals and the best
options, the rows a reader may see. Whole days are dates, never moments: they never shift.
"""

import functools
import zoneinfo
from collections.abc import Sequence
from typing import Any, NamedTuple

from aiohttp import web

from ..store import dates
from . import i18n

ANSWERS = dates.ANSWERS
UNTIL = " \u2013 "  # an en dash between a start and an end


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this system knows, sorted: the lists to pick from, and the names taken."""
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


@functools.cache
def _zone_set() -> frozenset[str]:
    return frozenset(zone_names())


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone of this name, or None for a name that is not one (never a file path)."""
    return zoneinfo.ZoneInfo(name) if name in _zone_set() else None


class Shown(NamedTuple):
    """The zone a page shows times in, and whether the reader picked it (?tz=)."""

    name: str
    zone: zoneinfo.ZoneInfo
    picked: bool


def shown_zone(request: web.Request, question: Any) -> Shown:
    """The reader's pick (?tz=Europe/Paris, the zone switch), else the poll's own zone; a
    browser with JavaScript shows its own zone in place of the poll's (static/dates.js)."""
    asked = request.query.get("tz", "")
    picked = zone(asked) if asked else None
    if picked is not None:
        return Shown(asked, picked, True)
    own = question.timezone or "UTC"
    return Shown(own, zone(own) or zoneinfo.ZoneInfo("UTC"), False)


class Column(NamedTuple):
    """One option as a column of the grid."""

    id: int
    day: str  # its day in the reader's language (and zone, for a start time)
    time: str | None  # "10:00 to 11:00" (an en dash) in the reader's zone; None: the whole day
    starts_at: str | None  # UTC, ISO 8601, for static/dates.js to show in the browser's zone
    ends_at: str | None
    yes: int
    if_need_be: int
    no: int
    best: bool
    settled: bool

    @property
    def text(self) -> str:
        return f"{self.day}, {self.time}" if self.time else self.day


def columns(
    question: Any, choices: Sequence[Any], rows: Sequence[dates.Participant], where: Shown, language: str
) -> list[Column]:
    """The options as columns, with their totals (`no` counted from `rows`, which should be
    every row) and the best ones marked."""
    best = dates.best_options(choices)
    found = []
    for c in choices:
        no = sum(1 for r in rows if r.answers.get(c.id) == dates.NO)
        if c.starts_at is not None:
            local = c.starts_at.astimezone(where.zone)
            day = i18n.format_weekday(local.date(), language)
            start = i18n.format_clock(c.starts_at, where.zone, language)
            end = i18n.format_clock(c.ends_at, where.zone, language)
            span = (c.starts_at.isoformat(), c.ends_at.isoformat())
            time: str | None = f"{start}{UNTIL}{end}"
        else:
            day = i18n.format_weekday(c.day, language) if c.day is not None else c.choice_text
            time, span = None, (None, None)
        settled = c.id == question.settled_choice_id
        found.append(Column(c.id, day, time, *span, c.votes, c.if_need_be, no, c.id in best, settled))
    return found


def visible_rows(
    question: Any, rows: Sequence[dates.Participant], show_counts: bool, is_maker: bool
) -> list[dates.Participant]:
    """The rows this reader may see: all of them for the maker; else their own, and the others'
    only while counts are shown and names are not kept for the maker."""
    if is_maker:
        return list(rows)
    if not show_counts or question.names_hidden:
        return [r for r in rows if r.mine]
    return list(rows)


def has_times(choices: Sequence[Any]) -> bool:
    return any(c.starts_at is not None for c in choices)


def settled_text(question: Any, choices: Sequence[Any], where: Shown, language: str) -> str | None:
    """The settled option as the page says it, or None."""
    for c in choices:
        if c.id == question.settled_choice_id:
            if c.starts_at is None:
                return i18n.format_weekday(c.day, language) if c.day is not None else c.choice_text
            end = i18n.format_clock(c.ends_at, where.zone, language)
            return f"{i18n.format_zoned(c.starts_at, where.zone, language)}{UNTIL}{end}"
    return None
