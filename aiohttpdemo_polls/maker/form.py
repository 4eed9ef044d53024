"""The rules of a new or edited poll, for the form and the API: a failed form comes back exactly
as typed, with a message next to each wrong field, so nothing has to be typed twice.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from multidict import MultiDict, MultiMapping

from ..store.schema import KINDS, RESULTS, TEXT_MAX
from ..web.i18n import N_

MIN_CHOICES = 2
MAX_CHOICES = 20
# The kinds this form makes (maker/new.py's KINDS has every kind /poll/new offers): a date poll
# has a form of its own (maker/dates.py).
FORM_KINDS = ("choices", "ranked")
# Fewer choices than this leave nothing to rank: with two, a ranking is a single cross.
MIN_CHOICES_OF_KIND = {"ranked": 3}
SHOWN_CHOICES = 5  # empty choice fields on a fresh form
MAX_OFFSET_MINUTES = 18 * 60  # the widest UTC offset a clock can show

QUESTION_REQUIRED = N_("Write a question.")
TOO_FEW_CHOICES = N_("Give at least %(count)d choices.", count=MIN_CHOICES)
TOO_FEW_TO_RANK = N_("Give at least %(count)d choices to rank.", count=MIN_CHOICES_OF_KIND["ranked"])
TOO_MANY_CHOICES = N_("Give at most %(count)d choices.", count=MAX_CHOICES)
CHOICE_REQUIRED = N_("Write a text for this choice.")
DUPLICATE_CHOICE = N_("This choice is the same as an earlier one.")
CLOSES_AT_MALFORMED = N_("Enter a date and time such as 2030-12-31 18:00.")
CLOSES_AT_PAST = N_("Pick a time in the future.")
BAD_OFFSET = N_("Your browser sent a time zone offset that is not valid.")
NOT_TEXT = N_("This field must be text.")
CONTROL_CHARACTER = N_("Remove the control character (such as a NUL byte or a tab) from this field.")
RESULTS_UNKNOWN = N_("Pick when the results are shown: always, after voting, or after voting closes.")
KIND_UNKNOWN = N_("Pick what voters do: pick a choice or rank the choices.")

# What a `datetime-local` input sends (seconds optional), or the same typed with a space.
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?")
_OFFSET = re.compile(r"[+-]?\d{1,4}")


def question_too_long(length: int) -> str:
    return N_(
        "The question is too long: %(length)d characters, at most %(max)d.", length=length, max=TEXT_MAX
    )


def choice_too_long(length: int) -> str:
    return N_("This choice is too long: %(length)d characters, at most %(max)d.", length=length, max=TEXT_MAX)


def has_control(text: str) -> str | None:
    """A message when `text` holds a NUL or another control character, else None."""
    if any(unicodedata.category(c) == "Cc" for c in text):
        return CONTROL_CHARACTER
    return None


def same_text_key(text: str) -> str:
    """What two choices share when they read the same: case and Unicode form ignored
    (so `Café` typed with a combining accent equals `CAFÉ`)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _text(form: MultiMapping, name: str) -> str | None:
    value = form.get(name, "")
    return value if isinstance(value, str) else None


@dataclass
class PollForm:
    """A new-poll or edit form as typed, and what is wrong with it.

    `errors` maps a field to its message: `question_text`, `choices` (the count),
    `choice-N` (the N-th choice field, from 0), `closes_at`, `results`, `kind`.
    """

    kind: str = KINDS[0]  # schema.KINDS: what the poll asks (maker/new.py's KINDS)
    question_text: str = ""
    choices: list[str] = field(default_factory=lambda: [""] * SHOWN_CHOICES)
    multiple: bool = False
    closes_at: str = ""
    tz_offset: str = ""
    results: str = RESULTS[0]  # who sees the counts before voting closes (rules.py)
    lock_votes: bool = False  # voters cannot change their vote
    errors: dict[str, str] = field(default_factory=dict)
    closes_at_utc: datetime | None = None  # the checked `closes_at`, once valid

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def question(self) -> str:
        return self.question_text.strip()

    @property
    def choice_texts(self) -> list[str]:
        """The non-empty choices, trimmed, in the order typed."""
        return [c.strip() for c in self.choices if c.strip()]

    @property
    def can_add_choice(self) -> bool:
        return len(self.choices) < MAX_CHOICES

    @property
    def columns(self) -> dict[str, Any]:
        """The question's columns that only this kind of poll sets (store.making.create_poll)."""
        return {}


def visible(text: str) -> str:
    """Control characters as U+FFFD, so the form shown again marks where they were
    (and the page itself carries no NUL bytes)."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text)


def _shown(typed: PollForm) -> PollForm:
    typed.question_text = visible(typed.question_text)
    typed.choices = [visible(c) for c in typed.choices]
    typed.closes_at = visible(typed.closes_at)
    typed.results = visible(typed.results)
    typed.kind = visible(typed.kind)
    typed.tz_offset = ""  # the browser's script sets it again on the next submit
    return typed


def read_settings(form: MultiMapping) -> tuple[dict[str, Any], set[str]]:
    """The fields every kind of poll's form has, as typed (PollForm's keywords), and the
    names of those that were not text."""
    not_text = set()
    typed: dict[str, Any] = {}
    for name in ("question_text", "closes_at", "results"):
        value = _text(form, name)
        if value is None:
            not_text.add(name)
        typed[name] = value or ""
    typed["results"] = typed["results"] or RESULTS[0]  # left out (an older page, a script): as before
    typed["tz_offset"] = _text(form, "tz_offset") or ""
    typed["lock_votes"] = bool(form.get("lock_votes"))
    return typed, not_text


def check_settings(typed: PollForm, not_text: set[str], now: datetime | None = None) -> None:
    """The rules every kind of poll shares: the question, the closing time, who sees results."""
    _check_question(typed)
    _check_closes_at(typed, now or datetime.now(UTC))
    if typed.results not in RESULTS:
        typed.errors["results"] = RESULTS_UNKNOWN
    for name in not_text:
        typed.errors[name] = NOT_TEXT


def shown(typed: PollForm) -> PollForm:
    """The form as it goes back to the page: control characters made visible."""
    return _shown(typed)


def _typed(form: MultiMapping) -> tuple[PollForm, set[str]]:
    """The form's fields as typed, and the names of fields that were not text."""
    settings, not_text = read_settings(form)
    choices = []
    for index, value in enumerate(form.getall("choice", [])):
        if isinstance(value, str):
            choices.append(value)
        else:
            not_text.add(f"choice-{index}")
            choices.append("")
    kind = _text(form, "kind")
    if kind is None:
        not_text.add("kind")
    typed = PollForm(
        kind=kind or KINDS[0],  # left out (an older page, a script): a poll with choices
        choices=choices,
        multiple=bool(form.get("multiple")),
        **settings,
    )
    return typed, not_text


def _fields_to_show(choices: list[str]) -> list[str]:
    """At least SHOWN_CHOICES fields; past MAX_CHOICES, empty ones go (they hold nothing)."""
    if len(choices) > MAX_CHOICES:
        choices = [c for c in choices if c.strip()]
    return choices + [""] * (SHOWN_CHOICES - len(choices))


def with_another_choice(form: MultiMapping) -> PollForm:
    """The form as typed plus one empty choice field: the no-JavaScript "add a choice"."""
    typed, _ = _typed(form)
    typed.choices = _fields_to_show(typed.choices)
    if typed.can_add_choice:
        typed.choices.append("")
    return _shown(typed)


def check_new_poll(form: MultiMapping, now: datetime | None = None) -> PollForm:
    """The new-poll form, checked: every rule of the form gives its own message."""
    typed, not_text = _typed(form)
    typed.choices = _fields_to_show(typed.choices)
    _check_choices(typed, allow_empty=True)
    check_settings(typed, not_text, now)
    if typed.kind not in FORM_KINDS:
        typed.errors["kind"] = KIND_UNKNOWN
    elif typed.kind == "ranked":
        typed.multiple = False  # a ranking names several choices by its nature
        if "choices" not in typed.errors and len(typed.choice_texts) < MIN_CHOICES_OF_KIND["ranked"]:
            typed.errors["choices"] = TOO_FEW_TO_RANK
    return typed if typed.valid else _shown(typed)


def check_edit(form: MultiMapping, count: int) -> PollForm:
    """An edit of a poll's question and its `count` choice texts (each one required)."""
    typed, not_text = _typed(form)
    typed.choices = (typed.choices + [""] * count)[:count]
    _check_question(typed)
    _check_choices(typed, allow_empty=False)
    for name in not_text:
        typed.errors[name] = NOT_TEXT
    return typed if typed.valid else _shown(typed)


def _check_question(typed: PollForm) -> None:
    problem = has_control(typed.question_text)
    if problem is None and not typed.question:
        problem = QUESTION_REQUIRED
    elif problem is None and len(typed.question) > TEXT_MAX:
        problem = question_too_long(len(typed.question))
    if problem:
        typed.errors["question_text"] = problem


def _check_choices(typed: PollForm, allow_empty: bool) -> None:
    seen: set[str] = set()
    for index, raw in enumerate(typed.choices):
        text = raw.strip()
        key = same_text_key(text)
        problem = has_control(raw)
        if problem is None and not text and not allow_empty:
            problem = CHOICE_REQUIRED
        elif problem is None and len(text) > TEXT_MAX:
            problem = choice_too_long(len(text))
        elif problem is None and text and key in seen:
            problem = DUPLICATE_CHOICE
        seen.add(key)
        if problem:
            typed.errors[f"choice-{index}"] = problem
    count = len(typed.choice_texts)
    if count < MIN_CHOICES:
        typed.errors["choices"] = TOO_FEW_CHOICES
    elif count > MAX_CHOICES:
        typed.errors["choices"] = TOO_MANY_CHOICES


def _check_closes_at(typed: PollForm, now: datetime) -> None:
    raw = typed.closes_at.strip()
    if not raw:
        return
    problem = has_control(typed.closes_at)
    if problem is None:
        when = parse_local_time(raw, typed.tz_offset)
        if isinstance(when, str):
            problem = when
        elif when <= now:
            problem = CLOSES_AT_PAST
        else:
            typed.closes_at_utc = when
    if problem:
        typed.errors["closes_at"] = problem


def parse_local_time(raw: str, tz_offset: str) -> datetime | str:
    """`raw` (a `datetime-local` value) read at `tz_offset` minutes east of UTC, as UTC.

    The browser's script fills `tz_offset` with the offset in force at the chosen moment;
    without JavaScript it is empty and the time is read as UTC, as the form says.
    Returns the message for the field when the input is not usable.
    """
    match = _DATETIME.fullmatch(raw)
    offset = tz_offset.strip() or "0"
    if not _OFFSET.fullmatch(offset) or abs(int(offset)) > MAX_OFFSET_MINUTES:
        return BAD_OFFSET
    if match is None:
        return CLOSES_AT_MALFORMED
    try:
        parts = [int(p) for p in match.groups(default="0")]
        local = datetime(*parts, tzinfo=timezone(timedelta(minutes=int(offset))))
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        # 2030-02-30, 25:00, or a year 1 / 9999 moment that leaves the calendar in UTC.
        return CLOSES_AT_MALFORMED


# The new-poll form sent as JSON (the API): the same fields, so the same checks judge it.
# Only the JSON types are checked here; what the values must be is check_new_poll's.
NOT_A_LIST_OF_TEXTS = "Give the choices as a list of texts."
NOT_BOOLEAN = "This field must be true or false."
NOT_TEXT_OR_NULL = "This field must be text, or null."
NOT_RESULTS = "This field must be one of: " + ", ".join(RESULTS) + "."
NOT_KIND = "This field must be one of: " + ", ".join(FORM_KINDS) + "."
# RFC 3339 as `closes_at` takes it: the form's date and time, fractions of a second dropped,
# and the offset (Z or ±hh:mm) handed to the form as its `tz_offset` minutes.
_RFC3339 = re.compile(r"(?P<local>[0-9T: -]+?)(?:\.[0-9]+)?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?")


def json_fields(body: Mapping[str, Any]) -> tuple[MultiDict, dict[str, str]]:
    """A JSON new-poll body as the form's fields for check_new_poll, and a message for each
    field of the wrong JSON type (`choices` a list of texts, `multiple` true or false...)."""
    errors: dict[str, str] = {}
    form: MultiDict = MultiDict()
    text = body.get("question_text", "")
    if isinstance(text, str):
        form["question_text"] = text
    else:
        errors["question_text"] = NOT_TEXT
    choices = body.get("choices", [])
    if isinstance(choices, list) and all(isinstance(c, str) for c in choices):
        form.extend(("choice", c) for c in choices)
    else:
        errors["choices"] = NOT_A_LIST_OF_TEXTS
    for name in ("multiple", "lock_votes"):
        value = body.get(name, False)
        if not isinstance(value, bool):
            errors[name] = NOT_BOOLEAN
        elif value:
            form[name] = "on"  # what a ticked checkbox sends
    closes_at = body.get("closes_at")
    if closes_at is not None and not isinstance(closes_at, str):
        errors["closes_at"] = NOT_TEXT_OR_NULL
    elif closes_at:
        form.update(_closes_at_fields(closes_at))
    if not isinstance(body.get("creation_key", ""), str):
        errors["creation_key"] = NOT_TEXT
    results = body.get("results", "always")
    if results in RESULTS:
        form["results"] = results
    else:  # a fixed set of strings is a JSON type of its own (an enum in the API's document)
        errors["results"] = NOT_RESULTS
    kind = body.get("kind", KINDS[0])
    if isinstance(kind, str) and kind in FORM_KINDS:
        form["kind"] = kind
    else:
        errors["kind"] = NOT_KIND
    return form, errors


def _closes_at_fields(value: str) -> dict[str, str]:
    """`closes_at` and `tz_offset` as the form sends them, from an RFC 3339 date and time."""
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return {"closes_at": value}  # the form's own message says what it takes
    offset = match["offset"] or "Z"
    sign = -1 if offset.startswith("-") else 1
    minutes = 0 if offset in "Zz" else sign * (int(offset[1:3]) * 60 + int(offset[4:]))
    return {"closes_at": match["local"], "tz_offset": str(minutes)}


def json_names(errors: Mapping[str, str]) -> dict[str, str]:
    """The form's field names as the API's: `choice-2` is `choices/2` (the third in the list)."""
    return {name.replace("choice-", "choices/"): message for name, message in errors.items()}
