"""A date poll in the JSON API: its body when read (options with `date`, or `starts_at` and
`ends_at` in RFC 3339 with the poll's offset), answering it (`name` and `answers`), and the
checks of a new one (maker.dates, the form's rules)."""

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..maker import dates as rules
from ..store import connections
from ..store import dates as stored
from ..store.schema import NAME_MAX
from ..store.votes import VoteOutcome
from ..web import dates
from ..web.config import site
from ..web.content import published_content
from ..web.database import engine_key
from ..web.voting import VOTING_CLOSED, cast
from .problems import Problem

KIND = stored.KIND
NEW_POLL_FIELDS = frozenset(
    {"kind", "question_text", "timezone", "options", "names_hidden", "closes_at", "results", "lock_votes"}
    | {"creation_key"}
)
VOTE_FIELDS = frozenset({"name", "answers"})
NAME_REQUIRED = "Give your name: 1 to 64 characters."
NOT_ANSWERS = 'Give "answers" as an object: option id -> "yes", "if_need_be" or "no".'
ANSWER_MISSING = "Answer this option: yes, if_need_be or no."
ANSWER_UNKNOWN = 'This must be one of "yes", "if_need_be", "no".'
NOT_AN_OPTION = "This is not an option of this poll."
NOT_DATES = 'This poll is not a date poll: send "choices".'
NOT_ANSWERED = "The poll's options changed: read the poll and answer again."


def check_new(body: Mapping[str, Any]) -> rules.DatePollForm:
    """A new date poll from the body, checked by the form's rules; a 422 naming each field."""
    typed = rules.check_json_date_poll(body)
    if not typed.valid:
        raise Problem(422, errors=typed.errors)
    return typed


def _rfc3339(value: Any, where: Any) -> str:
    """A moment in the poll's zone, with its offset: no reader has to guess a zone."""
    return value.astimezone(where).isoformat()


def body_fields(question: Any, choices: list, visible: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What a date poll's body adds: the poll's fields, and each choice's (in order)."""
    where = dates.zone(question.timezone or "UTC") or dates.zone("UTC")
    poll = {
        "timezone": question.timezone,
        "names_hidden": question.names_hidden,
        "settled_option": question.settled_choice_id,
    }
    options = []
    for c in choices:
        when = (
            {"date": c.day.isoformat()}
            if c.day is not None
            else {"starts_at": _rfc3339(c.starts_at, where), "ends_at": _rfc3339(c.ends_at, where)}
        )
        options.append(when | ({"if_need_be": c.if_need_be} if visible else {}))
    return poll, options


async def extra(request: web.Request, question: Any, visible: bool, voter: str | None) -> dict[str, Any]:
    """What only a date poll's body has, read for this caller: the rows they may see (names and
    answers: none where only the maker sees names), and their own answers."""
    async with connections.connection(site(request)[engine_key]) as conn:
        rows = await stored.participants(conn, question.id, voter)
    mine = next((r for r in rows if r.mine), None)
    shown = rows if visible and not question.names_hidden else []
    return {
        "participants": [
            {"name": r.name, "answers": {str(c): a for c, a in r.answers.items()}} for r in shown
        ],
        "my_answers": {str(c): a for c, a in mine.answers.items()} if mine else {},
        "answered": mine is not None,
    }


async def _row(request: web.Request, question_id: int, voter: str) -> dict[str, Any]:
    """The caller's own row as stored: its name and answers (option id -> answer)."""
    async with connections.connection(site(request)[engine_key]) as conn:
        rows = await stored.participants(conn, question_id, voter)
    mine = next((r for r in rows if r.mine), None)
    if mine is None:
        return {"name": "", "answers": {}}
    return {"name": mine.name, "answers": {str(c): a for c, a in mine.answers.items()}}


def _read(body: Mapping[str, Any], choices: list) -> tuple[str, dict[int, str]]:
    """The name and answers, each checked against the poll's options; a 422 naming the fields."""
    errors: dict[str, str] = {}
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= NAME_MAX or not name.strip().isprintable():
        errors["name"] = NAME_REQUIRED
    given = body.get("answers")
    answers: dict[int, str] = {}
    if not isinstance(given, dict):
        errors["answers"] = NOT_ANSWERS
        given = {}
    options = {str(c.id): c.id for c in choices}
    for key, value in given.items():
        if key not in options:
            errors[f"answers/{key[:20]}"] = NOT_AN_OPTION
        elif value not in stored.ANSWERS:
            errors[f"answers/{key}"] = ANSWER_UNKNOWN
        else:
            answers[options[key]] = value
    for key in options:
        if key not in given:
            errors[f"answers/{key}"] = ANSWER_MISSING
    if errors:
        raise Problem(422, errors=dict(list(errors.items())[:20]))
    return name.strip(), answers  # type: ignore[union-attr]


async def vote(request: web.Request, question_id: int, body: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Cast the caller's answers as the grid's form does: the ballot, and the body's fields."""
    content = await published_content(request, question_id)  # 404 when there is no poll
    if content.question.kind != KIND:
        raise Problem(422, NOT_DATES, errors={"answers": NOT_DATES})
    if content.question.closed:
        raise Problem(409, VOTING_CLOSED)
    name, answers = _read(body, content.choices)
    ballot = await cast(request, question_id, [], answers=answers, name=name)
    if ballot.outcome is VoteOutcome.CLOSED:
        raise Problem(409, VOTING_CLOSED)
    if ballot.outcome is VoteOutcome.INVALID_CHOICE:
        raise Problem(422, NOT_ANSWERED, errors={"answers": NOT_ANSWERED})
    if ballot.outcome is VoteOutcome.ALREADY_VOTED:  # their earlier row, which may differ (lock_votes)
        return ballot, await _row(request, question_id, ballot.voter)
    return ballot, {"name": name, "answers": {str(c): a for c, a in sorted(answers.items())}}
