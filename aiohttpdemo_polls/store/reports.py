"""Reports of polls: filed by anyone (limited per client address, counted in `report_filing`),
read by the operator's moderation page, most reported first. Knows nothing of HTTP."""

from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from . import limits
from .schema import published, question, report, report_filing

REPORT_WINDOW = timedelta(hours=1)
REPORTS_SHOWN = 20  # of each poll on the moderation page, newest first


async def file_report(
    conn: Any, question_id: int, reason: str, text: str, client: str, per_hour: int
) -> bool:
    """Store a report of a published poll, counted against `client`'s `per_hour`
    (limits.TooMany past it); False when there is no such poll to report (nothing stored)."""
    async with conn.begin():
        await limits.take(conn, report_filing, client, per_hour, REPORT_WINDOW)
        shown = sa.select(question.c.id, sa.literal(reason), sa.literal(text)).where(
            question.c.id == question_id, published
        )
        inserted = await conn.execute(report.insert().from_select(["question_id", "reason", "text"], shown))
        return inserted.rowcount == 1


class Report(NamedTuple):
    reason: str
    text: str
    created_at: datetime


async def reports_of(conn: Any, question_ids: list[int]) -> dict[int, list[Report]]:
    """The newest REPORTS_SHOWN reports of each of these polls, newest first."""
    if not question_ids:
        return {}
    newest = sa.func.row_number().over(
        partition_by=report.c.question_id, order_by=(report.c.created_at.desc(), report.c.id.desc())
    )
    ranked = (
        sa.select(
            report.c.question_id, report.c.reason, report.c.text, report.c.created_at, newest.label("n")
        )
        .where(report.c.question_id.in_(question_ids))
        .subquery()
    )
    query = (
        sa.select(ranked.c.question_id, ranked.c.reason, ranked.c.text, ranked.c.created_at)
        .where(ranked.c.n <= REPORTS_SHOWN)
        .order_by(ranked.c.question_id, ranked.c.n)
    )
    found: dict[int, list[Report]] = {q: [] for q in question_ids}
    for row in await (await conn.execute(query)).fetchall():
        found[row.question_id].append(Report(row.reason, row.text, row.created_at))
    return found
