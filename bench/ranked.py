"""A big ranked poll for bench/run.py and the event-loop test: RANKED_BALLOTS ballots over
RANKED_CHOICES choices, written straight into the database (as real ballots: a `ballot` row
each, `vote` rows with their ranks, counters equal to the rows), and how long its count takes.

Rankings are drawn by PostgreSQL's own hash of (ballot, choice), leaning towards the first
choices as real voters lean towards favourites, 1 to 8 choices long: tens of thousands of
distinct rankings, so the grouping in SQL is tested, not skipped.
"""

import time
from typing import Any

import psycopg2

from aiohttpdemo_polls.store import ranked, runoff

RANKED_BALLOTS = 100_000
RANKED_CHOICES = ("Ash", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel")
RANKED_QUESTION = "Which tree for the square? (a ranked poll)"

_BALLOTS = """
INSERT INTO ballot (question_id, voter)
SELECT %(q)s, 'ranked-voter-' || n FROM generate_series(1, %(n)s) AS n
"""
_VOTES = """
INSERT INTO vote (question_id, voter, choice_id, rank)
SELECT %(q)s, 'ranked-voter-' || n, r.id, r.place
FROM generate_series(1, %(n)s) AS n
CROSS JOIN LATERAL (
    SELECT c.id, row_number() OVER (ORDER BY abs(hashint4(n * 64 + c.i::int)) %% 1000 + c.i * 60) AS place
    FROM unnest(%(choices)s::int[]) WITH ORDINALITY AS c(id, i)
) AS r
WHERE r.place <= 1 + abs(hashint4(n)) %% %(width)s
"""
_COUNTERS = """
UPDATE choice SET votes = (
    SELECT count(*) FROM vote v WHERE v.question_id = %(q)s AND v.choice_id = choice.id
) WHERE question_id = %(q)s
"""


def seed_ranked_poll(url: str, ballots: int = RANKED_BALLOTS) -> tuple[int, list[int]]:
    """Make the big ranked poll in the database at `url`: its id and its choices' ids."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO question (question_text, kind, pub_date)"
            " VALUES (%s, 'ranked', now() - interval '1 day') RETURNING id",
            (RANKED_QUESTION,),
        )
        question_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO choice (question_id, choice_text)"
            " SELECT %s, t FROM unnest(%s::text[]) AS t RETURNING id",
            (question_id, list(RANKED_CHOICES)),
        )
        choice_ids = sorted(row[0] for row in cur.fetchall())
        params = {"q": question_id, "n": ballots, "choices": choice_ids, "width": len(choice_ids)}
        cur.execute(_BALLOTS, params)
        cur.execute(_VOTES, params)
        cur.execute(_COUNTERS, params)
    conn.close()
    return question_id, choice_ids


def counting_times(url: str, question_id: int, repeat: int = 5) -> dict[str, Any]:
    """The poll's grouping in SQL, the parsing of its rankings and their count (runoff.count),
    best of `repeat`, in milliseconds; with the number of distinct rankings."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        grouping = []
        for _ in range(repeat):
            started = time.perf_counter()
            cur.execute(ranked._RANKINGS.sql, {"question_id": question_id})
            choices, grouped = cur.fetchone()
            grouping.append(time.perf_counter() - started)
    conn.close()
    parsing, counting = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        rankings = ranked.parse_rankings(grouped)
        parsed = time.perf_counter()
        counted = runoff.count(rankings, choices, seed=question_id)
        parsing.append(parsed - started)
        counting.append(time.perf_counter() - parsed)
    return {
        "ballots": counted.ballots,
        "distinct_rankings": len(grouped.splitlines()),
        "rounds": len(counted.rounds),
        "sql_ms": min(grouping) * 1000,
        "parse_ms": min(parsing) * 1000,
        "count_ms": min(counting) * 1000,
    }
