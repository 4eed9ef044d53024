"""Voter codes on the manage page: requiring them, making 1 to 10,000, downloading them
(CSV and printable cards with QR codes) only right after, and how many are used."""

import asyncio
import csv
import html
import io
import re
import time

import pytest
import sqlalchemy as sa
import stored

from aiohttpdemo_polls.maker import codes as maker_codes
from aiohttpdemo_polls.store import codes, schema

BATCH = re.compile(r"/poll/(\d+)/manage/([A-Za-z0-9_-]+)/codes/(\d+)/([A-Za-z0-9_-]{43})")


async def make_codes(client, poll, count) -> str:
    response = await client.post(f"{poll['manage']}/codes", data={"count": str(count)}, allow_redirects=False)
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert BATCH.fullmatch(location), location
    return location


async def csv_codes(client, batch: str) -> list[dict]:
    response = await client.get(batch + ".csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert "voter-codes.csv" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(await response.text())))


async def test_requiring_a_code_is_a_setting_the_maker_turns_on_and_off(client, make_poll, stored_poll):
    poll = await make_poll()
    page = await (await client.get(poll["manage"])).text()
    assert "Require a voter code to vote" in page
    on = await client.post(poll["manage"], data={"action": "require_code"}, allow_redirects=False)
    assert on.status == 303 and on.headers["Location"].endswith("?done=codes_required")
    assert stored_poll(poll["id"]).question.requires_code
    page = await (await client.get(on.headers["Location"])).text()
    assert "From now on, a vote needs one of your voter codes." in page
    assert "Stop requiring a code" in page
    off = await client.post(poll["manage"], data={"action": "allow_without_code"}, allow_redirects=False)
    assert off.status == 303
    assert not stored_poll(poll["id"]).question.requires_code


async def test_made_codes_download_as_csv_with_their_links_and_only_their_hashes_are_stored(
    client, make_poll, sync_engine
):
    poll = await make_poll()
    batch = await make_codes(client, poll, 25)
    page = await (await client.get(batch)).text()
    assert "25 new voter codes" in page and "Download them now." in page
    rows = await csv_codes(client, batch)
    assert len(rows) == 25 and len({r["code"] for r in rows}) == 25
    for row in rows:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", row["code"])
        assert row["link"].endswith(f"/poll/{poll['id']}?code={row['code']}")
    assert stored.rows(sync_engine, schema.voter_code) == 25
    with sync_engine.connect() as conn:
        dump = " ".join(conn.execute(sa.text("SELECT v::text FROM voter_code v")).scalars())
    assert not any(codes.normalize(r["code"]) in dump.upper() for r in rows)
    # the same download again, from the same address
    assert await csv_codes(client, batch) == rows


async def test_printable_cards_show_the_question_the_link_the_code_and_a_qr_code(client, make_poll):
    poll = await make_poll("Who chairs the club?")
    batch = await make_codes(client, poll, 3)
    rows = await csv_codes(client, batch)
    response = await client.get(batch + "/cards")
    assert response.status == 200
    page = await response.text()
    assert page.count('class="code-card"') == 3
    assert page.count("<svg") == 3 and page.count("Who chairs the club?") >= 3
    assert "codes.css" in page
    for row in rows:
        assert f'<strong class="code" data-code>{row["code"]}</strong>' in page
        assert html.escape(row["link"]) in page  # the QR code's link, in its label
    assert "no-store" in response.headers["Cache-Control"]  # its address holds the codes


async def test_ten_thousand_codes_are_made_at_once_and_their_cards_come_in_pages(
    client, make_poll, sync_engine
):
    poll = await make_poll()
    start = time.perf_counter()
    batch = await make_codes(client, poll, 10_000)
    took = time.perf_counter() - start
    assert took < 5, took
    assert stored.rows(sync_engine, schema.voter_code) == 10_000
    page = await (await client.get(batch)).text()
    assert "10,000 new voter codes" in page
    assert page.count("/cards?page=") == 10_000 // maker_codes.CARDS_PER_PAGE
    assert len(await csv_codes(client, batch)) == 10_000
    last = await client.get(batch + f"/cards?page={10_000 // maker_codes.CARDS_PER_PAGE}")
    assert last.status == 200
    assert (await last.text()).count('class="code-card"') == maker_codes.CARDS_PER_PAGE
    assert (await client.get(batch + f"/cards?page={10_000 // maker_codes.CARDS_PER_PAGE + 1}")).status == 404


async def test_the_event_loop_keeps_serving_while_ten_thousand_codes_are_made(client, make_poll):
    poll = await make_poll()
    making = asyncio.ensure_future(make_codes(client, poll, 10_000))
    gaps, last = [], time.perf_counter()
    while not making.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    await making
    assert max(gaps) < 0.25, max(gaps)


@pytest.mark.parametrize("count", ["0", "10001", "-1", "1.5", "ten", "", "٣", "9" * 1000])
async def test_a_count_that_is_not_1_to_10000_is_a_400_naming_the_field(
    client, make_poll, sync_engine, count
):
    poll = await make_poll()
    response = await client.post(f"{poll['manage']}/codes", data={"count": count}, allow_redirects=False)
    assert response.status == 400
    page = await response.text()
    assert "Give a whole number of codes from 1 to 10,000." in page
    assert 'id="count" ' in page and 'aria-invalid="true"' in page
    assert stored.rows(sync_engine, schema.voter_code) == 0


async def test_codes_are_behind_the_manage_token(client, anonymous, make_poll):
    poll = await make_poll()
    batch = await make_codes(client, poll, 2)
    wrong = batch.replace(poll["token"], "x" * 43)
    for path in (wrong, wrong + ".csv", wrong + "/cards"):
        assert (await anonymous.get(path)).status == 404
    refused = await anonymous.post(f"/poll/{poll['id']}/manage/{'x' * 43}/codes", data={"count": "5"})
    assert refused.status == 404


async def test_a_batch_address_not_made_here_is_a_404_and_an_old_one_a_410(client, make_poll, sync_engine):
    poll = await make_poll()
    batch = await make_codes(client, poll, 2)
    count, seed = BATCH.fullmatch(batch).group(3, 4)
    invented = batch.replace(seed, "A" * 43)
    assert (await client.get(invented)).status == 404
    assert (await client.get(batch.replace(f"/codes/{count}/", "/codes/3/"))).status == 404
    other = await make_poll("Another?")
    assert (await client.get(batch.replace(poll["manage"], other["manage"]))).status == 404
    with sync_engine.begin() as conn:
        conn.execute(sa.text("UPDATE voter_code SET created_at = now() - interval '25 hours'"))
    for path in (batch, batch + ".csv", batch + "/cards"):
        gone = await client.get(path)
        assert gone.status == 410
        assert "no longer be downloaded" in await gone.text()


@pytest.mark.parametrize("page", ["0", "2", "x", "-1", "1" * 50, "\u0661"])
async def test_a_cards_page_that_is_not_one_is_a_404(client, make_poll, page):
    poll = await make_poll()
    batch = await make_codes(client, poll, 2)
    assert (await client.get(batch + "/cards", params={"page": page})).status == 404


async def test_the_manage_page_counts_the_codes_used(client, anonymous, make_poll):
    poll = await make_poll(choices=("Yes", "No"))
    await client.post(poll["manage"], data={"action": "require_code"})
    rows = await csv_codes(client, await make_codes(client, poll, 4))
    page = await (await client.get(poll["manage"])).text()
    assert "0 of 4 codes used." in page
    choice = re.search(
        r'name="choice" id="choice1" value="(\d+)"', await (await anonymous.get(f"/poll/{poll['id']}")).text()
    )[1]
    for row in rows[:3]:
        voted = await anonymous.post(
            f"/poll/{poll['id']}/vote", data={"choice": choice, "code": row["code"]}, allow_redirects=False
        )
        assert voted.status == 302
    assert "3 of 4 codes used." in await (await client.get(poll["manage"])).text()


async def test_a_downloaded_codes_link_votes_once(client, anonymous, make_poll, votes_of):
    poll = await make_poll(choices=("Yes", "No"))
    await client.post(poll["manage"], data={"action": "require_code"})
    row = (await csv_codes(client, await make_codes(client, poll, 1)))[0]
    link = row["link"][row["link"].index("/poll/") :]
    form = await (await anonymous.get(link)).text()
    assert f'value="{row["code"]}"' in form
    choice = re.search(r'name="choice" id="choice2" value="(\d+)"', form)[1]
    voted = await anonymous.post(
        f"/poll/{poll['id']}/vote", data={"choice": choice, "code": row["code"]}, allow_redirects=False
    )
    assert voted.status == 302
    assert votes_of(poll["id"])[int(choice)] == 1


async def test_a_cross_site_form_makes_no_codes_and_changes_no_setting(
    client, make_poll, sync_engine, stored_poll
):
    poll = await make_poll()
    evil = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    made = await client.post(
        f"{poll['manage']}/codes", data={"count": "5"}, headers=evil, allow_redirects=False
    )
    required = await client.post(
        poll["manage"], data={"action": "require_code"}, headers=evil, allow_redirects=False
    )
    assert (made.status, required.status) == (403, 403)
    assert stored.rows(sync_engine, schema.voter_code) == 0
    assert not stored_poll(poll["id"]).question.requires_code


async def test_a_cross_site_vote_with_a_code_uses_no_code(anonymous, make_code_poll, votes_of):
    question, made = make_code_poll()
    evil = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    data = {"choice": str(question["choices"][0]), "code": made[0]}
    refused = await anonymous.post(
        f"/poll/{question['id']}/vote", data=data, headers=evil, allow_redirects=False
    )
    assert refused.status == 403
    assert sum(votes_of(question["id"]).values()) == 0


async def test_requiring_codes_keeps_the_ballots_already_cast_and_says_so(
    client, anonymous, make_poll, vote, votes_of
):
    poll = await make_poll(choices=("Yes", "No"))
    form = await (await anonymous.get(f"/poll/{poll['id']}")).text()
    choice = int(re.search(r'name="choice" id="choice1" value="(\d+)"', form)[1])
    assert (await vote(anonymous, poll["id"], choice)).status == 302
    page = await (await client.get(poll["manage"])).text()
    assert "Ballots already cast stay counted." in page
    await client.post(poll["manage"], data={"action": "require_code"})
    page = await (await client.get(poll["manage"])).text()
    assert "1 ballot was cast before codes were required; it stays counted." in page
    assert votes_of(poll["id"])[choice] == 1


async def test_a_poll_the_operator_hid_makes_and_gives_no_codes(client, make_poll, sync_engine):
    poll = await make_poll()
    batch = await make_codes(client, poll, 2)
    with sync_engine.begin() as conn:
        conn.execute(sa.text("UPDATE question SET hidden_at = now()"))
    for path in (batch, batch + ".csv", batch + "/cards"):
        assert (await client.get(path)).status == 410
    refused = await client.post(f"{poll['manage']}/codes", data={"count": "5"}, allow_redirects=False)
    assert refused.status == 410
    assert stored.rows(sync_engine, schema.voter_code) == 2
