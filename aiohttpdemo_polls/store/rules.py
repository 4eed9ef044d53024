"""Who may see a poll's counts, the one rule pages, live results and the API obey: `always`;
`after_vote`, a browser once it voted; `after_close`, only the maker until voting closes.
"""

from typing import Protocol

from .schema import RESULTS

ALWAYS, AFTER_VOTE, AFTER_CLOSE = RESULTS


class Poll(Protocol):
    """What the rule reads of a poll (a question row, polls.Question, polls.LiveCounts...)."""

    results: str
    closed: bool


def may_see_counts(poll: Poll, voted: bool, is_maker: bool) -> bool:
    """Whether a reader may see the counts, totals and percentages of this poll now."""
    if is_maker or poll.results == ALWAYS or poll.closed:
        return True
    return poll.results == AFTER_VOTE and voted
