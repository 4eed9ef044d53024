"""Reading and checking the forms people type into: one message per field, input kept.

A form that fails comes back with everything the person typed, exactly as typed, and a
message next to each wrong field, so nothing has to be typed twice.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from aiohttp import web
from multidict import MultiDictProxy, MultiMapping

from .db import TEXT_MAX
from .i18n import N_

MIN_CHOICES = 2
MAX_CHOICES = 20
SHOWN_CHOICES = 5  # empty choice fields on a fresh form
MAX_OFFSET_MINUTES = 18 * 60  # the widest UTC offset a clock can show

QUESTION_REQUIRED = N_("Write a question.")
TOO_FEW_CHOICES = N_("Give at least %(count)d choices.", count=MIN_CHOICES)
TOO_MANY_CHOICES = N_("Give at most %(count)d choices.", count=MAX_CHOICES)
CHOICE_REQUIRED = N_("Write a text for this choice.")
DUPLICATE_CHOICE = N_("This choice is the same as an earlier one.")
CLOSES_AT_MALFORMED = N_("Enter a date and time such as 2030-12-31 18:00.")
CLOSES_AT_PAST = N_("Pick a time in the future.")
BAD_OFFSET = N_("Your browser sent a time zone offset that is not valid.")
NOT_TEXT = N_("This field must be text.")
NOT_UTF8 = N_("The form could not be read: its text is not valid UTF-8.")
CONTROL_CHARACTER = N_("Remove the control character (such as a NUL byte or a tab) from this field.")

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


async def read_form(request: web.Request) -> MultiDictProxy:
    """The request's form fields; a body that is not readable text is a 400 page, not a 500.

    A body over the size limit is a 413 whatever its content type: aiohttp checks the
    limit only while reading a form, and does not read a body of another type at all.
    """
    if request.content_length is not None and request.content_length > request.client_max_size:
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.client_max_size, actual_size=request.content_length
        )
    try:
        return await request.post()
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        # Bytes that are not UTF-8, or a charset Python does not know.
        raise web.HTTPBadRequest(text=NOT_UTF8) from exc


def _text(form: MultiMapping, name: str) -> str | None:
    value = form.get(name, "")
    return value if isinstance(value, str) else None


@dataclass
class PollForm:
    """A new-poll or edit form as typed, and what is wrong with it.

    `errors` maps a field to its message: `question_text`, `choices` (the count),
    `choice-N` (the N-th choice field, from 0), `closes_at`.
    """

    question_text: str = ""
    choices: list[str] = field(default_factory=lambda: [""] * SHOWN_CHOICES)
    multiple: bool = False
    closes_at: str = ""
    tz_offset: str = ""
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


def _visible(text: str) -> str:
    """Control characters as U+FFFD, so the form shown again marks where they were
    (and the page itself carries no NUL bytes)."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text)


def _shown(typed: PollForm) -> PollForm:
    typed.question_text = _visible(typed.question_text)
    typed.choices = [_visible(c) for c in typed.choices]
    typed.closes_at = _visible(typed.closes_at)
    typed.tz_offset = ""  # the browser's script sets it again on the next submit
    return typed


def _typed(form: MultiMapping) -> tuple[PollForm, set[str]]:
    """The form's fields as typed, and the names of fields that were not text."""
    not_text = set()
    question_text = _text(form, "question_text")
    if question_text is None:
        not_text.add("question_text")
    choices = []
    for index, value in enumerate(form.getall("choice", [])):
        if isinstance(value, str):
            choices.append(value)
        else:
            not_text.add(f"choice-{index}")
            choices.append("")
    closes_at = _text(form, "closes_at")
    if closes_at is None:
        not_text.add("closes_at")
    typed = PollForm(
        question_text=question_text or "",
        choices=choices,
        multiple=bool(form.get("multiple")),
        closes_at=closes_at or "",
        tz_offset=_text(form, "tz_offset") or "",
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
    _check_question(typed)
    _check_choices(typed, allow_empty=True)
    _check_closes_at(typed, now or datetime.now(UTC))
    for name in not_text:
        typed.errors[name] = NOT_TEXT
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
