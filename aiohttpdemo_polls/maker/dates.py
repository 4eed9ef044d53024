"""The rules of a new date poll ("find a date"), for the form and the API: options are whole
days, or start times typed in the poll's IANA time zone with a duration, stored in UTC. A
failed form comes back as typed, with a message next to each wrong field.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple

from multidict import MultiMapping

from ..store.schema import TEXT_MAX
from ..web.dates import zone
from ..web.i18n import N_
from .form import NOT_BOOLEAN, NOT_TEXT, PollForm, check_settings, json_fields, read_settings, shown, visible

KIND = "dates"
MIN_OPTIONS = 2
MAX_OPTIONS = 100
SHOWN_DAYS = 3  # empty day rows on a fresh form
MAX_DAYS = MAX_OPTIONS
DEFAULT_DURATION = 60  # minutes
MAX_DURATION = 24 * 60
DEFAULT_ZONE = "UTC"  # without JavaScript, until the maker picks theirs

ZONE_UNKNOWN = N_("Pick a time zone from the list, such as Europe/Berlin.")
DURATION_RANGE = N_("Give a duration in minutes, from 1 to 1440 (24 hours).")
DAY_MALFORMED = N_("Enter a date such as 2030-03-01.")
DAY_MISSING = N_("Enter the day for these times.")
TIMES_MALFORMED = N_("Enter times such as 10:00, 14:30.")
DAY_TWICE = N_("This day is given twice.")
TIME_TWICE = N_("This time is given twice.")
TOO_FEW_OPTIONS = N_("Give at least %(count)d options.", count=MIN_OPTIONS)
TOO_MANY_OPTIONS = N_("Give at most %(count)d options.", count=MAX_OPTIONS)


def time_skipped(clock: str, zone: str) -> str:
    return N_(
        "%(time)s does not exist on that day in %(zone)s: the clocks change then.", time=clock, zone=zone
    )


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DURATION = re.compile(r"\d{1,5}")


class Spec(NamedTuple):
    """One option as typed, with the fields its messages go to."""

    day: str
    clock: str | None  # "10:00", or None for the whole day
    minutes: int | None
    day_field: str
    clock_field: str
    twice_field: str


@dataclass
class DayRow:
    """One day of the form: its date, and its start times ("10:00, 14:30"; none: the whole day)."""

    day: str = ""
    times: str = ""


@dataclass
class DatePollForm(PollForm):
    """A new date poll as typed. `errors` adds `timezone`, `duration`, `options` (the count),
    and `day-N` / `times-N` (the N-th day row, from 0); in the API, `options/N/...`."""

    kind: str = KIND
    timezone: str = DEFAULT_ZONE
    duration: str = str(DEFAULT_DURATION)
    days: list[DayRow] = field(default_factory=lambda: [DayRow() for _ in range(SHOWN_DAYS)])
    names_hidden: bool = False
    options: list[dict[str, Any]] = field(default_factory=list)  # the checked options, as choice rows

    @property
    def choice_texts(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.options

    @property
    def columns(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "names_hidden": self.names_hidden}

    @property
    def can_add_day(self) -> bool:
        return len(self.days) < MAX_DAYS


def _typed(form: MultiMapping) -> tuple[DatePollForm, set[str]]:
    settings, not_text = read_settings(form)
    rows = []
    day_values, times_values = form.getall("day", []), form.getall("times", [])
    for index in range(max(len(day_values), len(times_values))):
        day = day_values[index] if index < len(day_values) else ""
        times = times_values[index] if index < len(times_values) else ""
        if not isinstance(day, str):
            not_text.add(f"day-{index}")
            day = ""
        if not isinstance(times, str):
            not_text.add(f"times-{index}")
            times = ""
        rows.append(DayRow(day, times))
    typed = DatePollForm(
        timezone=form.get("timezone", DEFAULT_ZONE) if isinstance(form.get("timezone", ""), str) else "",
        duration=form.get("duration", str(DEFAULT_DURATION))
        if isinstance(form.get("duration", ""), str)
        else "",
        days=rows,
        names_hidden=bool(form.get("names_hidden")),
        **settings,
    )
    return typed, not_text


def _rows_to_show(rows: list[DayRow]) -> list[DayRow]:
    if len(rows) > MAX_DAYS:
        rows = [r for r in rows if r.day.strip() or r.times.strip()]
    return rows + [DayRow() for _ in range(SHOWN_DAYS - len(rows))]


def _shown(typed: DatePollForm) -> DatePollForm:
    for row in typed.days:
        row.day, row.times = visible(row.day), visible(row.times)
    typed.timezone, typed.duration = visible(typed.timezone), visible(typed.duration)
    return shown(typed)  # type: ignore[return-value]


def with_another_day(form: MultiMapping, copy_last: bool) -> DatePollForm:
    """The form as typed plus one day row (no JavaScript): empty, or `copy_last`, the last
    filled day's times on the day after it."""
    typed, _ = _typed(form)
    rows = [r for r in typed.days if r.day.strip() or r.times.strip()]
    if not typed.can_add_day:
        typed.days = _rows_to_show(typed.days)
        return _shown(typed)
    new = DayRow()
    if copy_last and rows:
        last = rows[-1]
        new.times = last.times
        day = _day(last.day.strip())
        if day is not None and day < date.max:
            new.day = (day + timedelta(days=1)).isoformat()
    typed.days = [*rows, new]
    typed.days = _rows_to_show(typed.days)
    return _shown(typed)


def check_new_date_poll(form: MultiMapping, now: datetime | None = None) -> DatePollForm:
    """The new date poll form, checked: every rule gives its own message."""
    typed, not_text = _typed(form)
    typed.days = _rows_to_show(typed.days)
    minutes = _duration(typed)
    specs = []
    for index, row in enumerate(typed.days):
        day, times = row.day.strip(), row.times.strip()
        if not day and not times:
            continue
        fields = (f"day-{index}", f"times-{index}")
        if not day:
            typed.errors[fields[0]] = DAY_MISSING
            continue
        if not times:
            specs.append(Spec(day, None, None, fields[0], fields[1], fields[0]))
            continue
        for clock in (t.strip() for t in times.replace(";", ",").split(",")):
            specs.append(Spec(day, clock, minutes, fields[0], fields[1], fields[1]))
    _check_options(typed, specs, "options")
    check_settings(typed, not_text, now)
    return typed if typed.valid else _shown(typed)


def _duration(typed: DatePollForm) -> int | None:
    raw = typed.duration.strip()
    if not _DURATION.fullmatch(raw) or not 0 < int(raw) <= MAX_DURATION:
        typed.errors["duration"] = DURATION_RANGE
        return None
    return int(raw)


def _check_options(typed: DatePollForm, specs: list[Spec], count_field: str) -> None:
    """Each option resolved in the poll's zone (into typed.options), or its field's message."""
    where = zone(typed.timezone)
    if where is None:
        typed.errors["timezone"] = ZONE_UNKNOWN
    seen: set[tuple] = set()
    for spec in specs:
        if spec.day_field in typed.errors or spec.clock_field in typed.errors:
            continue
        day = _day(spec.day)
        if day is None:
            typed.errors[spec.day_field] = DAY_MALFORMED
            continue
        if spec.clock is None:
            if (day,) in seen:
                typed.errors[spec.twice_field] = DAY_TWICE
            seen.add((day,))
            typed.options.append(
                {"choice_text": day.isoformat(), "day": day, "starts_at": None, "ends_at": None}
            )
            continue
        clock = _clock(spec.clock)
        if clock is None:
            typed.errors[spec.clock_field] = TIMES_MALFORMED
            continue
        if (day, clock) in seen:
            typed.errors[spec.twice_field] = TIME_TWICE
            continue
        seen.add((day, clock))
        if where is None or spec.minutes is None:
            continue  # their own messages say why
        local = datetime.combine(day, clock, tzinfo=where)
        starts_at = local.astimezone(UTC)
        if starts_at.astimezone(where).replace(tzinfo=None) != local.replace(tzinfo=None):
            typed.errors[spec.clock_field] = time_skipped(clock.strftime("%H:%M"), typed.timezone)
            continue
        ends_at = starts_at + timedelta(minutes=spec.minutes)
        typed.options.append(
            {
                "choice_text": _label(starts_at, ends_at, where, typed.timezone),
                "day": None,  # every row has every key: one INSERT of many rows
                "starts_at": starts_at,
                "ends_at": ends_at,
            }
        )
    count = len(typed.options)
    if count < MIN_OPTIONS and not any(k.startswith(("day-", "times-", "options/")) for k in typed.errors):
        typed.errors[count_field] = TOO_FEW_OPTIONS
    elif count > MAX_OPTIONS:
        typed.errors[count_field] = TOO_MANY_OPTIONS


def _label(starts_at: datetime, ends_at: datetime, where: tzinfo, name: str) -> str:
    """The option as psql shows it in `choice_text`: local start and end, and the zone."""
    start, end = starts_at.astimezone(where), ends_at.astimezone(where)
    until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start:%Y-%m-%d %H:%M}\u2013{until} ({name})"[:TEXT_MAX]


def _day(raw: str) -> date | None:
    if not _DAY.fullmatch(raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def _clock(raw: str) -> time | None:
    match = _TIME.fullmatch(raw)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return time(int(match[1]), int(match[2]))


# The API's body for a date poll: the new-poll fields every poll has, and these.
NOT_OPTIONS = (
    'Give the options as a list of objects: {"date": ...} or {"start": ..., "duration_minutes": ...}.'
)
NOT_OPTION = 'Give either "date" (2030-03-01), or "start" (2030-01-15T10:00) with "duration_minutes".'
NOT_WHOLE_MINUTES = "This field must be a whole number of minutes."
API_FIELDS = frozenset({"kind", "timezone", "options", "names_hidden"})
_START = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2})(?::00)?")


def check_json_date_poll(body: Mapping[str, Any]) -> DatePollForm:
    """A JSON new date poll, checked by the form's rules; errors named as the API's fields."""
    common = {k: v for k, v in body.items() if k not in API_FIELDS}
    form, errors = json_fields(common)
    settings, not_text = read_settings(form)
    typed = DatePollForm(days=[], **settings)
    typed.errors.update(errors)
    zone_name = body.get("timezone", DEFAULT_ZONE)
    if isinstance(zone_name, str):
        typed.timezone = zone_name
    else:
        typed.errors["timezone"] = NOT_TEXT
    hidden = body.get("names_hidden", False)
    if isinstance(hidden, bool):
        typed.names_hidden = hidden
    else:
        typed.errors["names_hidden"] = NOT_BOOLEAN
    options = body.get("options", [])
    specs = []
    if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
        typed.errors["options"] = NOT_OPTIONS
        options = []
    for index, option in enumerate(options):
        here = f"options/{index}"
        if set(option) == {"date"} and isinstance(option["date"], str):
            specs.append(Spec(option["date"], None, None, f"{here}/date", f"{here}/date", here))
            continue
        if set(option) != {"start", "duration_minutes"} or not isinstance(option["start"], str):
            typed.errors[here] = NOT_OPTION
            continue
        minutes = option["duration_minutes"]
        if type(minutes) is not int:
            typed.errors[f"{here}/duration_minutes"] = NOT_WHOLE_MINUTES
            continue
        if not 0 < minutes <= MAX_DURATION:
            typed.errors[f"{here}/duration_minutes"] = DURATION_RANGE
            continue
        match = _START.fullmatch(option["start"].strip())
        if match is None:
            typed.errors[f"{here}/start"] = TIMES_MALFORMED
            continue
        specs.append(Spec(match[1], match[2], minutes, f"{here}/start", f"{here}/start", here))
    _check_options(typed, specs, "options")
    check_settings(typed, not_text)
    return typed
