"""Voter codes (store/codes.py): their shape, their keyed hashes, batches, and the vote
statement's rule that a code poll's ballot is its code's (store/votes.py)."""

import asyncio
import secrets
import time
from datetime import timedelta

import aiopg.sa
import pytest
import sqlalchemy as sa
import stored

from aiohttpdemo_polls.store import codes, schema
from aiohttpdemo_polls.store.changes import Changes
from aiohttpdemo_polls.store.votes import VoteBatcher, VoteOutcome

KEY = b"test key"


def voter() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture
async def engine(database_url):
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=4) as engine:
        yield engine


@pytest.fixture
def changes(database_url):
    return Changes(database_url)


@pytest.fixture
def code_poll(make_question, engine, changes):
    """`await code_poll(count, **columns)`: a poll that requires codes, and its `count` codes."""

    async def make(count: int = 3, **columns):
        question = make_question(choices=("Yes", "No"), requires_code=True, **columns)
        made = codes.batch_codes(codes.new_seed(), count)
        hashes = [codes.code_hash(KEY, question["id"], c) for c in made]
        async with engine.acquire() as conn:
            assert await codes.add_batch(conn, changes, question["id"], hashes)
        return question, made

    return make


def hashed(question, code: str) -> bytes:
    return codes.code_hash(KEY, question["id"], code)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("7K3QXM9PDA", "7K3QXM9PDA"),
        ("7k3qx-m9pda", "7K3QXM9PDA"),
        (" 7K3QX M9PDA ", "7K3QXM9PDA"),
        ("7K3QX-M9PDO", "7K3QXM9PD0"),  # an O is read as the zero it must be
        ("7K3QX-M9PDl", "7K3QXM9PD1"),  # and an l or I as a one
    ],
)
def test_a_typed_code_is_read_whatever_its_case_dashes_and_spaces(typed, code):
    assert codes.normalize(typed) == code


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "7K3QXM9PD",
        "7K3QXM9PDAA",
        "7K3QXM9PDU",
        "7K3QXM9PD!",
        "7K3QXM9PDÄ",
        "\uff17K3QXM9PDA",  # a fullwidth seven
        "-" * 41,
        "7" * 5000,
    ],
)
def test_anything_that_cannot_be_a_code_is_refused_by_shape(typed):
    assert codes.normalize(typed) is None


def test_codes_are_ten_unambiguous_characters_printed_in_two_groups():
    made = codes.batch_codes(codes.new_seed(), 10_000)
    assert len(set(made)) == 10_000
    assert all(len(c) == 10 and set(c) <= set(codes.ALPHABET) for c in made)
    assert not set("ILOU") & set("".join(made))
    assert codes.BITS >= 40
    assert codes.grouped("7K3QXM9PDA") == "7K3QX-M9PDA"


def test_a_batch_comes_again_only_from_its_seed():
    seed = codes.new_seed()
    assert codes.batch_codes(seed, 5) == codes.batch_codes(seed, 5)
    assert codes.batch_codes(codes.new_seed(), 5) != codes.batch_codes(seed, 5)


def test_a_code_hash_depends_on_the_key_and_the_poll():
    assert codes.code_hash(KEY, 1, "7K3QXM9PDA") != codes.code_hash(b"other", 1, "7K3QXM9PDA")
    assert codes.code_hash(KEY, 1, "7K3QXM9PDA") != codes.code_hash(KEY, 2, "7K3QXM9PDA")
    assert len(codes.code_voter(codes.code_hash(KEY, 1, "7K3QXM9PDA"))) <= 64  # ballot.voter


async def test_ten_thousand_codes_are_stored_hashed_in_well_under_a_second(
    make_question, engine, changes, sync_engine
):
    question = make_question(requires_code=True)
    made = codes.batch_codes(codes.new_seed(), codes.MAX_CODES)
    start = time.perf_counter()
    hashes = [codes.code_hash(KEY, question["id"], c) for c in made]
    async with engine.acquire() as conn:
        assert await codes.add_batch(conn, changes, question["id"], hashes)
    took = time.perf_counter() - start
    assert took < 1.0, took
    assert stored.rows(sync_engine, schema.voter_code) == 10_000
    with sync_engine.connect() as conn:
        kept = conn.execute(sa.select(schema.voter_code.c.code_hash)).scalars().all()
    assert not {c.encode() for c in made} & {bytes(h) for h in kept}  # never the code itself


async def test_a_batch_with_a_code_the_poll_has_already_is_not_kept(code_poll, engine, changes, sync_engine):
    question, made = await code_poll(2)
    again = [hashed(question, made[0]), hashed(question, "7K3QXM9PDA")]
    async with engine.acquire() as conn:
        assert not await codes.add_batch(conn, changes, question["id"], again)
    assert stored.rows(sync_engine, schema.voter_code) == 2


async def test_a_code_poll_refuses_a_ballot_without_one_of_its_codes(code_poll, engine, changes, votes_of):
    question, made = await code_poll()
    yes = question["choices"][0]
    batcher = VoteBatcher(engine, changes)
    other_poll_code = codes.code_hash(KEY, question["id"] + 1, made[0])
    outcomes = [
        await batcher.cast(question["id"], [yes], voter()),
        await batcher.cast(question["id"], [yes], voter(), hashed(question, "7K3QXM9PDA")),
        await batcher.cast(question["id"], [yes], voter(), other_poll_code),
    ]
    assert outcomes == [VoteOutcome.CODE_REFUSED] * 3
    assert votes_of(question["id"]) == {c: 0 for c in question["choices"]}


async def test_a_code_casts_one_ballot_that_it_changes_from_any_browser(
    code_poll, engine, changes, votes_of, sync_engine, vote_rows_match_counters
):
    question, made = await code_poll()
    yes, no = question["choices"]
    batcher = VoteBatcher(engine, changes)
    code = hashed(question, made[0])
    assert await batcher.cast(question["id"], [yes], voter(), code) is VoteOutcome.COUNTED
    assert await batcher.cast(question["id"], [no], voter(), code) is VoteOutcome.CHANGED
    assert await batcher.cast(question["id"], [no], voter(), code) is VoteOutcome.ALREADY_VOTED
    assert votes_of(question["id"]) == {yes: 0, no: 1}
    assert stored.voters(sync_engine, question["id"]) == {codes.code_voter(code)}
    assert vote_rows_match_counters()


async def test_a_used_code_is_used_up_on_a_poll_that_locks_votes(code_poll, engine, changes, votes_of):
    question, made = await code_poll(lock_votes=True)
    yes, no = question["choices"]
    batcher = VoteBatcher(engine, changes)
    code = hashed(question, made[0])
    browser = voter()
    assert await batcher.cast(question["id"], [yes], browser, code) is VoteOutcome.COUNTED
    assert await batcher.cast(question["id"], [no], browser, code) is VoteOutcome.CODE_USED
    assert await batcher.cast(question["id"], [yes], voter(), code) is VoteOutcome.CODE_USED
    assert votes_of(question["id"]) == {yes: 1, no: 0}


@pytest.mark.parametrize("lock_votes", [True, False])
async def test_two_browsers_racing_with_one_code_in_one_batch_give_one_ballot(
    code_poll, engine, changes, votes_of, sync_engine, vote_rows_match_counters, lock_votes
):
    question, made = await code_poll(lock_votes=lock_votes)
    yes, no = question["choices"]
    batcher = VoteBatcher(engine, changes)
    code = hashed(question, made[0])
    outcomes = await asyncio.gather(
        batcher.cast(question["id"], [yes], voter(), code), batcher.cast(question["id"], [no], voter(), code)
    )
    assert outcomes[0] is VoteOutcome.COUNTED
    assert outcomes[1] is (VoteOutcome.CODE_USED if lock_votes else VoteOutcome.CHANGED)
    assert len(stored.voters(sync_engine, question["id"])) == 1
    assert sum(votes_of(question["id"]).values()) == 1
    assert vote_rows_match_counters()


async def test_processes_racing_with_one_code_give_one_ballot(
    code_poll, database_url, changes, votes_of, sync_engine, vote_rows_match_counters
):
    """Ten writers (as ten processes would have), each sending the same unused code at once."""
    question, made = await code_poll(lock_votes=True)
    yes = question["choices"][0]
    code = hashed(question, made[0])
    engines = [await aiopg.sa.create_engine(database_url, minsize=1, maxsize=1) for _ in range(10)]
    try:
        outcomes = await asyncio.gather(
            *(VoteBatcher(e, changes).cast(question["id"], [yes], voter(), code) for e in engines)
        )
    finally:
        for e in engines:
            e.close()
            await e.wait_closed()
    assert sorted(o.name for o in outcomes) == ["CODE_USED"] * 9 + ["COUNTED"]
    assert votes_of(question["id"])[yes] == 1
    assert len(stored.voters(sync_engine, question["id"])) == 1
    assert vote_rows_match_counters()


async def test_a_poll_without_codes_takes_the_browsers_ballot_and_ignores_a_code(
    make_question, engine, changes, sync_engine
):
    question = make_question(choices=("Yes", "No"))
    browser = voter()
    code = codes.code_hash(KEY, question["id"], "7K3QXM9PDA")
    assert await VoteBatcher(engine, changes).cast(
        question["id"], question["choices"][:1], browser, code
    ) is (VoteOutcome.COUNTED)
    assert stored.voters(sync_engine, question["id"]) == {browser}


async def test_ballots_cast_before_codes_were_required_stay_counted(
    make_question, engine, changes, votes_of, sync_engine
):
    question = make_question(choices=("Yes", "No"))
    yes = question["choices"][0]
    batcher = VoteBatcher(engine, changes)
    browser = voter()
    assert await batcher.cast(question["id"], [yes], browser) is VoteOutcome.COUNTED
    async with engine.acquire() as conn:
        await codes.require_code(conn, changes, question["id"], True)
    assert await batcher.cast(question["id"], [yes], browser) is VoteOutcome.CODE_REFUSED
    assert votes_of(question["id"])[yes] == 1
    assert stored.voters(sync_engine, question["id"]) == {browser}


async def test_the_counts_say_how_many_codes_cast_a_ballot(code_poll, engine, changes):
    question, made = await code_poll(3)
    batcher = VoteBatcher(engine, changes)
    for code in made[:2]:
        await batcher.cast(question["id"], question["choices"][:1], voter(), hashed(question, code))
    async with engine.acquire() as conn:
        assert await codes.counts(conn, question["id"]) == codes.CodeCounts(used=2, total=3)


async def test_a_batch_is_known_by_its_first_and_last_codes_while_it_is_fresh(code_poll, engine, sync_engine):
    question, made = await code_poll(3)
    first, last = hashed(question, made[0]), hashed(question, made[-1])
    async with engine.acquire() as conn:
        assert await codes.batch_age(conn, question["id"], first, last) < timedelta(minutes=1)
        assert await codes.batch_age(conn, question["id"], first, hashed(question, "7K3QXM9PDA")) is None
        assert await codes.batch_age(conn, question["id"] + 1, first, last) is None
    with sync_engine.begin() as conn:
        conn.execute(sa.text("UPDATE voter_code SET created_at = now() - interval '25 hours'"))
    async with engine.acquire() as conn:
        assert await codes.batch_age(conn, question["id"], first, last) > timedelta(hours=24)


async def test_deleting_a_poll_deletes_its_codes(code_poll, sync_engine):
    question, _ = await code_poll(3)
    with sync_engine.begin() as conn:
        conn.execute(schema.question.delete().where(schema.question.c.id == question["id"]))
    assert stored.rows(sync_engine, schema.voter_code) == 0


def test_codes_made_or_removed_with_sql_notify_their_poll(make_question, sync_engine):
    question = make_question()
    pooled = sync_engine.raw_connection()
    raw = pooled.dbapi_connection
    try:
        raw.autocommit = True
        cursor = raw.cursor()
        cursor.execute(f"LISTEN {schema.CHANNEL}")
        with sync_engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO voter_code (question_id, code_hash) VALUES (:q, :h)"),
                {"q": question["id"], "h": hashed(question, "7K3QXM9PDA")},
            )
        with sync_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM voter_code"))
        deadline = time.monotonic() + 10
        heard = []
        while len(heard) < 2 and time.monotonic() < deadline:
            raw.poll()
            heard += [n.payload for n in raw.notifies]
            raw.notifies.clear()
            time.sleep(0.01)
        assert heard == [str(question["id"])] * 2
    finally:
        pooled.invalidate()


def test_part_of_a_batch_is_drawn_alone_as_it_is_in_the_whole():
    seed = codes.new_seed()
    assert codes.batch_codes(seed, 3, start=500) == codes.batch_codes(seed, 503)[500:]
