"""Who may see a poll's counts: the one rule pages, live results, the API and exports obey.

A poll's maker chooses (`question.results`): `always`; `after_vote`, a browser once it has
voted in the poll; `after_close`, nobody but the maker until voting closes. Once a poll
is closed nobody can vote any more, so everyone sees its counts.
"""

from typing import Protocol

from .db import RESULTS

ALWAYS, AFTER_VOTE, AFTER_CLOSE = RESULTS


class Poll(Protocol):
    """What the rule reads of a poll (a question row, db_pages.Question, db.LiveCounts...)."""

    results: str
    closed: bool


def may_see_counts(poll: Poll, voted: bool, is_maker: bool) -> bool:
    """Whether a reader may see the counts, totals and percentages of this poll now."""
    if is_maker or poll.results == ALWAYS or poll.closed:
        return True
    return poll.results == AFTER_VOTE and voted
