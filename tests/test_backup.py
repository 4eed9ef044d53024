"""Backups as docs/deployment.md ("Backups") says: `pg_dump` a database, restore it into a new
one (`pg_restore`, or `psql` for a plain dump), and the app serves its polls from the copy."""

import subprocess

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.store import making, migrate, pgserver, schema


def run(program: str, *args: str) -> None:
    """One of the embedded server's own programs, as the guide runs them."""
    result = subprocess.run(
        [str(pgserver.bin_dir() / program), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("dump_format", ["custom", "plain"])
async def test_a_dump_restored_into_a_new_database_serves_the_same_polls(
    stoppable_database, aiohttp_client, config, tmp_path, vote_rows_match_counters, dump_format
):
    source = stoppable_database.url  # the superuser's `postgres` database, with the app's schema
    engine = sa.create_engine(source, future=True)
    try:
        with engine.begin() as conn:
            question_id, (tea, coffee) = making.add_poll(conn, "Tea or coffee?", ["Tea", "Coffee"])
            for n, choice_id in enumerate([tea, tea, coffee]):
                voter = f"backup-voter-{n}"
                conn.execute(schema.ballot.insert().values(question_id=question_id, voter=voter))
                conn.execute(
                    schema.vote.insert().values(question_id=question_id, voter=voter, choice_id=choice_id)
                )
                conn.execute(
                    schema.choice.update()
                    .where(schema.choice.c.id == choice_id)
                    .values(votes=schema.choice.c.votes + 1)
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("CREATE DATABASE restored"))
    finally:
        engine.dispose()

    dump = tmp_path / "polls.dump"
    run("pg_dump", f"--format={dump_format}", f"--file={dump}", source)
    restored = source.replace("/postgres?", "/restored?")
    assert restored != source
    if dump_format == "custom":
        run("pg_restore", "--no-owner", f"--dbname={restored}", str(dump))
    else:
        run("psql", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={restored}", f"--file={dump}")

    copy = sa.create_engine(restored, future=True)
    try:
        with copy.begin() as conn:  # init-db finds it current: nothing to upgrade
            assert migrate.upgrade(conn).describe().startswith("database already at")
    finally:
        copy.dispose()
    assert vote_rows_match_counters(restored)
    database = {**config["database"], "url": restored}
    client = await aiohttp_client(init_app(config={**config, "database": database}))
    page = await (await client.get(f"/poll/{question_id}")).text()
    assert "Tea or coffee?" in page
    results = await (await client.get(f"/poll/{question_id}/results")).text()
    assert '<span class="votes">2</span>' in results[results.index(f'data-choice="{tea}"') :]
    # It takes votes, counters and rows kept equal, as the original did.
    answer = await client.post(
        f"/poll/{question_id}/vote", data={"choice": str(coffee)}, allow_redirects=False
    )
    assert answer.status == 302
    assert vote_rows_match_counters(restored)
