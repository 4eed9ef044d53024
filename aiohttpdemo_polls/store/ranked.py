"""The reads of ranked polls: the rankings to count, grouped in SQL so that identical ones
come once, and a voter's own ranking. The count itself is runoff.count's. No HTTP here.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from . import connections, runoff, schema

# Each distinct ranking (choice ids best first) with its number of ballots, as one text
# ("3,1,2 40" a line): one value travels and is decoded at once, where tens of thousands of
# rows would be parsed one by one on the event loop. A ballot's rows read in rank order.
# The poll's choices come in the same statement, so both are of one moment.
_RANKINGS = connections.compile_once(
    sa.text(f"""
SELECT ARRAY(SELECT id FROM {schema.choice.name} WHERE question_id = :question_id ORDER BY id) AS choices,
       coalesce(string_agg(array_to_string(ranking, ',') || ' ' || ballots, E'\\n'), '') AS grouped
FROM (
    SELECT ranking, count(*) AS ballots FROM (
        SELECT array_agg(choice_id ORDER BY rank, choice_id) AS ranking
        FROM {schema.vote.name} WHERE question_id = :question_id GROUP BY voter
    ) AS b GROUP BY ranking
) AS g""")
)


async def grouped_rankings(conn: Any, question_id: int) -> tuple[list[int], str]:
    """The poll's choice ids, and its rankings grouped in SQL as `parse_rankings` reads them."""
    result = await connections.execute_compiled(conn, _RANKINGS, question_id=question_id)
    row = await result.first()
    return list(row.choices), row.grouped


def parse_rankings(grouped: str) -> dict[tuple[int, ...], int]:
    """`grouped_rankings`' text as runoff.count takes it: each ranking and its ballots."""
    found: dict[tuple[int, ...], int] = {}
    for line in grouped.splitlines():
        ranking, _, ballots = line.partition(" ")
        found[tuple(map(int, ranking.split(",")))] = int(ballots)
    return found


def count_grouped(grouped: str, choice_ids: Sequence[int], question_id: int) -> runoff.Count:
    """The count of a poll from its grouped rankings; the poll's id seeds its draws, so anyone
    can replay them. CPU work: callers on an event loop run it in a thread."""
    return runoff.count(parse_rankings(grouped), list(choice_ids), seed=question_id)


_MINE = connections.compile_once(
    sa.select(schema.vote.c.choice_id)
    .where(
        schema.vote.c.question_id == sa.bindparam("question_id"), schema.vote.c.voter == sa.bindparam("voter")
    )
    .order_by(schema.vote.c.rank, schema.vote.c.choice_id)
)


async def my_ranking(conn: Any, question_id: int, voter: str) -> list[int]:
    """This voter's ranking in this poll, best first; empty when they have not voted."""
    result = await connections.execute_compiled(conn, _MINE, question_id=question_id, voter=voter)
    return [row.choice_id for row in await result.fetchall()]
