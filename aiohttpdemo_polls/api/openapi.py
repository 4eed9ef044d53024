"""The OpenAPI 3.1 document of the JSON API, written as data and served as is. Schemas give
the JSON types; the rules beyond them are the new-poll form's, answered per field in a 422.
"""

import json
from typing import Any

from ..maker.form import FORM_KINDS, MAX_CHOICES
from ..store.schema import KINDS, PG_INT_MAX
from ..web import statuses
from ..web.voting import VOTER_COOKIE

PROBLEM = "application/problem+json"


# A vote sets the voter cookie for a caller that sent none: counted, or perhaps counted.
_SETS_VOTER_COOKIE = {
    "Set-Cookie": {
        "description": f"`{VOTER_COOKIE}`, for a caller that sent none.",
        "schema": {"type": "string"},
    }
}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _problems(*answered: int, notes: dict[int, str] | None = None) -> dict[str, Any]:
    """The problem documents an operation answers with. A note says what a status means there, in
    place of the general text: an OpenAPI 3.1 reference may carry its own description."""
    notes = notes or {}
    return {
        str(status): _ref("responses", f"Problem{status}")
        | ({"description": notes[status]} if status in notes else {})
        for status in answered
    }


# What a status means for one operation, where that says more than statuses.py's general text.
_BAD_BODY = (
    "The body is not JSON (not UTF-8, a lone surrogate escape, a field named twice, a number too"
    " long, nesting too deep) or not an object."
)
_CREATE_NOTES = {
    400: _BAD_BODY,
    403: "Sent from another site's page, a wrong creation key, or polls are not made here.",
    429: "Too many new polls from this client address in the last hour.",
}
_VOTE_NOTES = {
    400: _BAD_BODY,
    403: (
        "Sent from another site's page; or the poll requires a voter code and `code` is missing, "
        "is not one of its codes, or has been used on a poll whose votes cannot be changed "
        "(`errors.code` says which)."
    ),
    409: "Voting on this poll has closed.",
    422: "A field is not valid (`errors` names it): `choices`, or a `code` that cannot be a voter code.",
}
_REMOVE_NOTES = {
    403: "Sent from another site's page.",
    404: "No such published poll, or the caller's voter cookie has no vote in it.",
    409: "Voting on this poll has closed, or its votes are final (its maker locked them).",
    503: "The ballot stayed busy, or the database out of reach: nothing was removed.",
}

_LINKS = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in ("self", "vote", "page", "results")},
    "required": ["self", "vote", "page", "results"],
}
_WHEN = {"type": ["string", "null"], "format": "date-time"}
_IDS = {"type": "array", "items": {"type": "integer"}}
_ID_OR_NULL = {"type": ["integer", "null"]}
# What a poll in the list and a poll read alone both say of it; "closed" is true once closed_at
# is set or closes_at has passed.
_POLL_HEAD = {
    "id": {"type": "integer"},
    "question_text": {"type": "string"},
    "published_at": {"type": "string", "format": "date-time"},
    "closes_at": _WHEN,
    "closed": {"type": "boolean"},
}

# A date poll's answers: option id -> answer.
_ANSWERS = {
    "type": "object",
    "propertyNames": {"pattern": "^[1-9][0-9]{0,9}$"},
    "additionalProperties": {"enum": ["yes", "if_need_be", "no"]},
    "description": "Option id -> `yes`, `if_need_be` or `no`: every option of the poll.",
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "What went wrong, for a person to read."},
            "errors": {
                "type": "object",
                "description": "A message per field: `choices/2` is the third choice in the list.",
                "additionalProperties": {"type": "string"},
            },
        },
        "required": ["type", "title", "status", "detail"],
    },
    "PollSummary": {
        "type": "object",
        "properties": {**_POLL_HEAD, "kind": {"enum": ["choices", "dates", "ranked"]}, "links": _LINKS},
        "required": ["id", "question_text", "published_at", "closes_at", "closed", "links"],
    },
    "PollList": {
        "type": "object",
        "properties": {
            "polls": {"type": "array", "items": _ref("schemas", "PollSummary")},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
            "next": {"type": ["string", "null"], "description": "The next page's address, if any."},
        },
        "required": ["polls", "page", "pages", "next"],
    },
    "Choice": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "choice_text": {"type": "string"},
            "votes": {
                "type": "integer",
                "minimum": 0,
                "description": "Only where counts_visible. A date poll's option: its yes answers.",
            },
            "percent": {"type": "number", "minimum": 0, "maximum": 100},
            "date": {"type": "string", "format": "date", "description": "A date poll's whole-day option."},
            "starts_at": {
                "type": "string",
                "format": "date-time",
                "description": "A date poll's timed option: its start, RFC 3339 with the poll's offset.",
            },
            "ends_at": {"type": "string", "format": "date-time"},
            "if_need_be": {
                "type": "integer",
                "minimum": 0,
                "description": "A date poll's if-need-be answers; only where counts_visible.",
            },
        },
        "required": ["id", "choice_text"],
    },
    "Poll": {
        "type": "object",
        "properties": {
            **_POLL_HEAD,
            "closed_at": _WHEN,
            "multiple": {"type": "boolean", "description": "Voters may pick several choices."},
            "requires_code": {
                "type": "boolean",
                "description": "A vote needs one of the voter codes the poll's maker handed out (`code`).",
            },
            "counts_visible": {
                "type": "boolean",
                "description": "Whether this caller may see the counts (the poll maker's `results` setting).",
            },
            "choices": {"type": "array", "items": _ref("schemas", "Choice")},
            "total": {"type": "integer", "minimum": 0, "description": "Only where counts_visible."},
            "my_choices": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The choices this caller's voter cookie voted for.",
            },
            "kind": {
                "enum": list(KINDS),
                "description": "`ranked`: voters rank the choices; `dates`: finding a date.",
            },
            "my_ranking": {**_IDS, "description": "A ranked poll: this caller's ranking, best first."},
            "count": _ref("schemas", "RankedCount"),
            "links": _LINKS,
            "timezone": {"type": ["string", "null"], "description": "A date poll's IANA time zone."},
            "names_hidden": {
                "type": "boolean",
                "description": "A date poll whose names only its maker sees.",
            },
            "settled_option": {
                "type": ["integer", "null"],
                "description": "The option its maker settled on (the poll is then closed).",
            },
            "participants": {
                "type": "array",
                "items": _ref("schemas", "Participant"),
                "description": "A date poll's rows, where counts_visible and names are not hidden.",
            },
            "my_answers": _ANSWERS,
        },
        "required": [
            "id",
            "question_text",
            "published_at",
            "closes_at",
            "closed_at",
            "closed",
            "kind",
            "multiple",
            "requires_code",
            "counts_visible",
            "choices",
            "my_choices",
            "links",
        ],
    },
    "VoteRequest": {
        "type": "object",
        "description": "`choices` for a poll with choices, `ranking` for a ranked poll: one of the two.",
        "properties": {
            "choices": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": PG_INT_MAX},
                "minItems": 1,
                "maxItems": MAX_CHOICES,
                "description": "Ids of the chosen choices: one, or several where the poll is `multiple`.",
            },
            "ranking": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": PG_INT_MAX},
                "minItems": 1,
                "maxItems": MAX_CHOICES,
                "uniqueItems": True,
                "description": "A ranked poll: choice ids, best first; unranked choices left out.",
            },
            "code": {
                "type": ["string", "null"],
                "maxLength": 40,
                "examples": ["7K3QX-M9PDA"],
                "description": (
                    "A voter code, for a poll that `requires_code`: 10 letters and digits, in any "
                    "case, with or without the dash and spaces. The ballot is then the code's, not "
                    "the cookie's: the same code changes it from anywhere (unless the poll locks "
                    "votes). Ignored by a poll that does not require codes; null or empty: no code."
                ),
            },
        },
        # `choices` or `ranking`, never both; with `code` where the poll requires one.
        "oneOf": [{"required": ["choices"]}, {"required": ["ranking"]}],
        "additionalProperties": False,
    },
    "RankedCount": {
        "type": "object",
        "description": "A ranked poll's count (only where counts_visible): instant runoff round by round, "
        "and head to head.",
        "properties": {
            "ballots": {"type": "integer", "minimum": 0},
            "winner": {**_ID_OR_NULL, "description": "More than half of the ballots still counting."},
            "beats_all": {**_ID_OR_NULL, "description": "The choice that beats every other head to head."},
            "rounds": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "round": {"type": "integer", "minimum": 1},
                        "votes": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"choice": {"type": "integer"}, "votes": {"type": "integer"}},
                                "required": ["choice", "votes"],
                            },
                            "description": "Choices still in the count, with their votes this round.",
                        },
                        "exhausted": {
                            "type": "integer",
                            "description": "Ballots with no ranked choice left.",
                        },
                        "eliminated": {**_IDS, "description": "Out after this round."},
                        "transfers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"to": _ID_OR_NULL, "ballots": {"type": "integer"}},
                                "required": ["to", "ballots"],
                            },
                            "description": "Where the eliminated ballots went (`to` null: exhausted).",
                        },
                        "tie_break": {
                            "enum": ["earlier_rounds", "first_preferences", "draw", None],
                            "description": "The step of `tie_rule` that broke a tie for elimination.",
                        },
                    },
                    "required": ["round", "votes", "exhausted", "eliminated", "transfers", "tie_break"],
                },
            },
            "head_to_head": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "choice": {"type": "integer"},
                        "over": {"type": "integer"},
                        "voters": {"type": "integer", "description": "Voters ranking `choice` above `over`."},
                    },
                    "required": ["choice", "over", "voters"],
                },
            },
            "tie_rule": {"type": "string"},
            "seed": {"type": "integer", "description": "The seed of the draws: the poll's id."},
        },
        "required": ["ballots", "winner", "beats_all", "rounds", "head_to_head", "tie_rule", "seed"],
    },
    "Ballot": {
        "type": "object",
        "properties": {
            "status": {"enum": ["counted", "changed", "already_voted", "unknown", "removed"]},
            "message": {"type": "string"},
            "choices": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The choices counted for this caller (an earlier ballot's, if it had one);"
                " none once removed.",
            },
            "ranking": {**_IDS, "description": "A ranked poll: the ranking counted for this caller."},
            "links": _LINKS,
        },
        "required": ["status", "message", "choices", "links"],
    },
    "NewPoll": {
        "type": "object",
        "description": "The new-poll form's fields, checked by the same rules.",
        "properties": {
            "question_text": {"type": "string", "description": "Up to 200 characters once trimmed."},
            "choices": {
                "type": "array",
                "items": {"type": "string"},
                "description": "2 to 20 different texts (3 to 20 to rank); empty ones are left out.",
            },
            "kind": {
                "enum": list(FORM_KINDS),
                "default": "choices",
                "description": "`ranked`: voters rank the choices, counted by instant runoff.",
            },
            "multiple": {"type": "boolean", "default": False},
            "closes_at": {
                "type": ["string", "null"],
                "description": "When voting closes, in the future: RFC 3339 (`2030-12-31T18:00:00+01:00`); "
                "without an offset, UTC.",
            },
            "results": {
                "enum": ["always", "after_vote", "after_close"],
                "default": "always",
                "description": "When voters see the counts.",
            },
            "lock_votes": {
                "type": "boolean",
                "default": False,
                "description": "Voters cannot change their vote.",
            },
            "creation_key": {"type": "string", "description": "Needed where the site's `creation` is `key`."},
        },
        "additionalProperties": False,
    },
    "NewDatePoll": {
        "type": "object",
        "description": "A date poll: options are whole days, or start times in `timezone` with a duration.",
        "properties": {
            "kind": {"const": "dates"},
            "question_text": {"type": "string", "description": "Up to 200 characters once trimmed."},
            "timezone": {
                "type": "string",
                "description": "The IANA time zone the start times are in, such as `Europe/Berlin`.",
                "default": "UTC",
            },
            "options": {
                "type": "array",
                "items": _ref("schemas", "DateOption"),
                "description": "2 to 100 options, none given twice.",
            },
            "names_hidden": {
                "type": "boolean",
                "default": False,
                "description": "Only the maker sees the participants' names.",
            },
            "closes_at": {"type": ["string", "null"], "description": "As for any poll."},
            "results": {"enum": ["always", "after_vote", "after_close"], "default": "always"},
            "lock_votes": {"type": "boolean", "default": False},
            "creation_key": {"type": "string"},
        },
        "required": ["kind"],
        "additionalProperties": False,
    },
    "DateOption": {
        "oneOf": [
            {
                "type": "object",
                "properties": {"date": {"type": "string", "description": "A whole day: `2030-03-01`."}},
                "required": ["date"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "start": {
                        "type": "string",
                        "description": "A local time in the poll's zone: `2030-01-15T10:00`.",
                    },
                    "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                },
                "required": ["start", "duration_minutes"],
                "additionalProperties": False,
            },
        ]
    },
    "DateAnswers": {
        "type": "object",
        "description": "An answer to a date poll: the participant's name and an answer for every option.",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "answers": _ANSWERS,
        },
        "required": ["name", "answers"],
        "additionalProperties": False,
    },
    "Participant": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "answers": _ANSWERS},
        "required": ["name", "answers"],
    },
    "DateBallot": {
        "type": "object",
        "properties": {
            "status": {"enum": ["counted", "changed", "already_voted", "unknown"]},
            "message": {"type": "string"},
            "name": {"type": "string"},
            "answers": _ANSWERS,
            "links": _LINKS,
        },
        "required": ["status", "message", "name", "answers", "links"],
    },
    "Created": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "manage_url": {
                "type": "string",
                "description": "The maker's private page; shown only in this answer.",
            },
            "message": {"type": "string"},
            "links": _LINKS,
        },
        "required": ["id", "manage_url", "message", "links"],
    },
}

# The headers RFC 9110 asks of these statuses' answers.
_PROBLEM_HEADERS = {
    405: {"Allow": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}

_RESPONSES = {
    f"Problem{status}": {
        "description": statuses.api_text(status),
        "content": {PROBLEM: {"schema": _ref("schemas", "Problem")}},
        **({"headers": _PROBLEM_HEADERS[status]} if status in _PROBLEM_HEADERS else {}),
    }
    for status in statuses.STATUSES
}

_PARAMETERS = {
    "QuestionId": {
        "name": "question_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": PG_INT_MAX},
    },
    "Page": {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 999_999_999, "default": 1},
    },
    "VoterCookie": {
        "name": VOTER_COOKIE,
        "in": "cookie",
        "required": False,
        "description": "The voter id, set by the first counted vote: one ballot per voter per poll.",
        "schema": {"type": "string"},
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "aiohttpdemo_polls API",
        "version": "1",
        "description": "Read polls, vote and make polls with the same rules as the site's forms. "
        "Errors are application/problem+json (RFC 9457).",
    },
    "paths": {
        "/api/polls": {
            "get": {
                "operationId": "listPolls",
                "summary": "Published polls, newest first, 20 a page",
                "parameters": [_ref("parameters", "Page")],
                "responses": {
                    "200": {
                        "description": "A page of polls; `next` and the Link header lead to the next one.",
                        "headers": {"Link": {"schema": {"type": "string"}}},
                        "content": _json(_ref("schemas", "PollList")),
                    },
                    **_problems(400, 405, 503, notes={400: "`page` is not a whole number from 1."}),
                },
            },
            "post": {
                "operationId": "createPoll",
                "summary": "Make a poll, as the new-poll form does",
                "requestBody": {
                    "required": True,
                    "content": _json({"oneOf": [_ref("schemas", "NewPoll"), _ref("schemas", "NewDatePoll")]}),
                },
                "responses": {
                    "201": {
                        "description": "Published. Keep `manage_url`: it is not shown again.",
                        "headers": {
                            "Location": {"required": True, "schema": {"type": "string"}},
                        },
                        "content": _json(_ref("schemas", "Created")),
                    },
                    **_problems(400, 403, 405, 413, 415, 422, 429, 503, notes=_CREATE_NOTES),
                },
            },
        },
        "/api/polls/{question_id}": {
            "get": {
                "operationId": "getPoll",
                "summary": "A published poll, its choices, and the counts where this caller may see them",
                "parameters": [_ref("parameters", "QuestionId"), _ref("parameters", "VoterCookie")],
                "responses": {
                    "200": {"description": "The poll.", "content": _json(_ref("schemas", "Poll"))},
                    **_problems(400, 404, 405, 410, 503),
                },
            }
        },
        "/api/polls/{question_id}/vote": {
            "post": {
                "operationId": "vote",
                "summary": "Vote, with the voting form's rules and voter cookie (or voter code)",
                "parameters": [_ref("parameters", "QuestionId"), _ref("parameters", "VoterCookie")],
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {"oneOf": [_ref("schemas", "VoteRequest"), _ref("schemas", "DateAnswers")]}
                    ),
                },
                "responses": {
                    "200": {
                        "description": "The caller's ballot: counted now, or counted before.",
                        "headers": _SETS_VOTER_COOKIE,
                        "content": _json(
                            {"anyOf": [_ref("schemas", "Ballot"), _ref("schemas", "DateBallot")]}
                        ),
                    },
                    "202": {
                        "description": (
                            "Status `unknown`: the connection to the database was lost before it "
                            "confirmed, so the vote may have been counted. Voting again with the "
                            "cookie never counts twice."
                        ),
                        "headers": _SETS_VOTER_COOKIE,
                        "content": _json(
                            {"anyOf": [_ref("schemas", "Ballot"), _ref("schemas", "DateBallot")]}
                        ),
                    },
                    **_problems(400, 403, 404, 405, 409, 410, 413, 415, 422, 503, notes=_VOTE_NOTES),
                },
            },
            "delete": {
                "operationId": "removeVote",
                "summary": 'Take back the caller\'s vote while the poll is open ("Remove my vote")',
                "description": "The ballot of the caller's voter cookie goes, and the counts drop at once. "
                "A poll whose votes are final (its maker locked them) refuses: taking a vote back and "
                "voting again would be the change the lock rules out.",
                "parameters": [_ref("parameters", "QuestionId"), _ref("parameters", "VoterCookie")],
                "responses": {
                    "200": {
                        "description": "Status `removed`: the caller has no vote in this poll any more.",
                        "content": _json(_ref("schemas", "Ballot")),
                    },
                    **_problems(400, 403, 404, 405, 409, 503, notes=_REMOVE_NOTES),
                },
            },
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1.", "content": _json({"type": "object"})},
                    **_problems(400, 405),
                },
            }
        },
    },
    "components": {"schemas": SCHEMAS, "responses": _RESPONSES, "parameters": _PARAMETERS},
}

BODY = json.dumps(DOCUMENT, indent=2).encode()
