"""Reading a JSON request body: one rule for every JSON door of the API (api.read_object).

Python's parser takes more than a program can mean or the database can store: a lone
surrogate escape (`"\\ud800"`, not Unicode text: psycopg2 cannot encode it, nor can the
problem document echoing it), a name given twice (the last silently wins), a whole number
past what int() reads, NaN. Each is a 400 problem saying which.
"""

import json
from typing import Any

from ..web.forms import is_text
from .problems import Problem

NOT_JSON = "The body is not valid JSON."
NOT_UTF8 = "The body is not valid UTF-8."
LONE_SURROGATE = (
    "The body holds a lone surrogate escape (such as \\ud800): a JSON string must be Unicode text."
)
NUMBER_TOO_LARGE = "A number in the body is too large."
TOO_DEEP = "The body is nested too deeply."
SHOWN_NAME = 100  # characters of a field's name repeated in a message


class _Refused(ValueError):
    """Raised from the parser's hooks: the body parses, but not as anything we may take."""


def parse(raw: bytes) -> Any:
    """The body's JSON value, or a 400 problem saying what is wrong with it."""
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_object,
            parse_int=_int,  # a float past its range is inf: wrong for every field, a 422 there
            parse_constant=_refuse_constant,
        )
    except UnicodeDecodeError:
        raise Problem(400, NOT_UTF8) from None
    except _Refused as refused:
        raise Problem(400, str(refused)) from None
    except RecursionError:  # the parser's own bound, well within the size limit
        raise Problem(400, TOO_DEEP) from None
    except ValueError:
        raise Problem(400, NOT_JSON) from None
    if not _all_text(value):
        raise Problem(400, LONE_SURROGATE)
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for name, _ in pairs:
        if not is_text(name):
            raise _Refused(LONE_SURROGATE)  # before a name is repeated in a message
        if name in seen:
            shown = json.dumps(name[:SHOWN_NAME], ensure_ascii=False)
            raise _Refused(f"The body names the field {shown} more than once.")
        seen.add(name)
    return dict(pairs)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past Python's limit on the digits of an int (4,300 by default)
        raise _Refused(NUMBER_TOO_LARGE) from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's parser would take them


def _all_text(value: Any) -> bool:
    """Whether every string in `value` is text; names were checked as they were parsed.

    A loop, not recursion: the value may be nested as deeply as the parser allowed."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not is_text(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True
