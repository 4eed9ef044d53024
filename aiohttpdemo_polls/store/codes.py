"""Voter codes: one-time codes that make a poll one vote per person without accounts. A code
is 10 characters of Crockford's base32 (50 bits from `secrets`; no I, L, O or U to misread),
and the ballot it casts belongs to the code (`code_voter`), not to a browser.

Only a keyed hash of each code is stored: HMAC-SHA256 under the site's `voter_codes_key`
setting, of the poll's id and the code. 50 random bits resist guessing through the site
(10,000 codes leave about one chance in 10^11 per try), but not offline: from a copy of the
database a plain or salted hash of one poll's 10,000 codes gives some of them up to a GPU in
seconds, and a slow hash would cost every vote and every batch of 10,000 codes too much. So
the hash is keyed with a secret kept outside the database (a pepper): a copy of the database
without the settings gives no code. With the key unset (development) the hash is still per
poll, but a copy of the database suffices; docs/voter-codes.md says to set it.

The plain codes exist only while a maker downloads them: a batch is drawn from a random seed
that only the maker's download address holds (`batch_codes`), so nothing in the database
can give them back.
"""

import hmac
import secrets
from datetime import timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from .changes import Changes
from .schema import ballot, question, voter_code

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
LENGTH = 10  # characters: 50 bits
BITS = 5 * LENGTH
MAX_CODES = 10_000  # made at a time
TYPED_MAX = 40  # characters a typed code may take, spaces and dashes included
HASH_BYTES = 24  # HMAC-SHA256 cut to 192 bits: with "code:" its hex fits ballot.voter (64)
VOTER_PREFIX = "code:"  # never in a voter cookie's id, so no cookie can take a code's ballot
SEED_BYTES = 32
# What a reader may type for a character that is not in the alphabet (Crockford's rules).
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", " -\t")


def normalize(typed: str) -> str | None:
    """The code as stored (`7K3QXM9PDA`) from what a voter typed (`7k3qx-m9pda`, `7K3QX M9PDA`,
    an O for a 0), or None when it cannot be a code."""
    if len(typed) > TYPED_MAX or not typed.isascii():
        return None
    code = typed.translate(_SEPARATORS).upper().translate(_READ_AS)
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def grouped(code: str) -> str:
    """The code as printed: two groups of five, `7K3QX-M9PDA`."""
    half = LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def new_seed() -> bytes:
    """A fresh batch's seed: 256 bits from `secrets`."""
    return secrets.token_bytes(SEED_BYTES)


def batch_codes(seed: bytes, count: int, start: int = 0) -> list[str]:
    """The batch's codes numbered `start` to `start + count - 1`, each 50 bits of
    HMAC-SHA256(seed, its number): the same seed gives the same codes, so the maker's
    download address (which holds it) can give them again."""
    codes = []
    for number in range(start, start + count):
        digest = hmac.digest(seed, number.to_bytes(4, "big"), "sha256")
        value = int.from_bytes(digest[:8], "big") >> (64 - BITS)
        codes.append("".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(LENGTH))))
    return codes


def code_hash(key: bytes, question_id: int, code: str) -> bytes:
    """What is stored of a code: keyed with the site's secret and bound to its poll."""
    return hmac.digest(key, f"{question_id}:{code}".encode(), "sha256")[:HASH_BYTES]


def code_voter(hashed: bytes) -> str:
    """The ballot's voter for a code: any browser that brings the code holds that ballot."""
    return VOTER_PREFIX + hashed.hex()


# The same, in SQL, for the counts.
_CODE_VOTER = sa.literal(VOTER_PREFIX) + sa.func.encode(voter_code.c.code_hash, "hex")


class _Collision(Exception):
    """A code of the batch was already one of the poll's: nothing of the batch is kept."""


async def add_batch(conn: Any, changes: Changes, question_id: int, hashes: list[bytes]) -> bool:
    """Store a batch's hashes in one statement, all or none; False when one of them was the
    poll's already (about one batch of 10,000 in 10^7 with 10,000 codes already made): the
    caller draws another batch, so no two voters ever hold the same code."""
    insert = sa.text(
        "INSERT INTO voter_code (question_id, code_hash) "
        "SELECT :question_id, unnest(CAST(:hashes AS bytea[])) ON CONFLICT DO NOTHING"
    )
    try:
        async with changes.transaction(conn) as changed:
            result = await conn.execute(insert, question_id=question_id, hashes=hashes)
            if result.rowcount != len(hashes):
                raise _Collision()
            changed.add(question_id)
    except _Collision:
        return False
    return True


async def batch_age(conn: Any, question_id: int, first: bytes, last: bytes) -> timedelta | None:
    """How long ago a batch was made, known by its first and last codes; None when they are
    not both this poll's (a batch never made, or made for another poll)."""
    query = sa.select(sa.func.count(), sa.func.now() - sa.func.min(voter_code.c.created_at)).where(
        voter_code.c.question_id == question_id, voter_code.c.code_hash.in_([first, last])
    )
    found, age = (await (await conn.execute(query)).first()).values()
    return age if found == len({first, last}) else None


class CodeCounts(NamedTuple):
    used: int  # codes under which a ballot stands
    total: int


async def counts(conn: Any, question_id: int) -> CodeCounts:
    """How many of the poll's codes have cast a ballot, of how many."""
    query = (
        sa.select(sa.func.count(ballot.c.voter), sa.func.count())
        .select_from(
            voter_code.outerjoin(
                ballot,
                sa.and_(ballot.c.question_id == voter_code.c.question_id, ballot.c.voter == _CODE_VOTER),
            )
        )
        .where(voter_code.c.question_id == question_id)
    )
    row = await (await conn.execute(query)).first()
    return CodeCounts(row[0], row[1])


async def require_code(conn: Any, changes: Changes, question_id: int, required: bool) -> None:
    """Require a code to vote, or stop requiring one. Ballots already cast stay as they are."""
    async with changes.transaction(conn) as changed:
        await conn.execute(
            question.update().where(question.c.id == question_id).values(requires_code=required)
        )
        changed.add(question_id)
