"""Voting with a voter code on the poll page: typed, or brought by a card's QR link; one
ballot per code, changed by the code from any browser; refusals are 403 forms that keep
what was sent, and hostile input is a 4xx."""

import asyncio

import aiohttp
import pytest
import stored

from aiohttpdemo_polls.store import codes, schema
from aiohttpdemo_polls.web.voting import CODE_NEEDED, CODE_SHAPE, CODE_USED, CODE_WRONG, VOTE_CHANGED


async def code_vote(browser, question_id: int, choice_id: int, code: str | None, **request):
    data = [("choice", str(choice_id))] + ([("code", code)] if code is not None else [])
    response = await browser.post(f"/poll/{question_id}/vote", data=data, allow_redirects=False, **request)
    await response.read()
    return response


async def test_a_code_poll_asks_for_the_code_on_its_form(client, make_code_poll, make_question):
    question, _ = make_code_poll()
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert 'name="code"' in page and "Your voter code" in page
    plain = make_question("No codes here?")
    assert 'name="code"' not in await (await client.get(f"/poll/{plain['id']}")).text()


async def test_a_typed_code_casts_the_ballot_and_the_results_show_it_as_the_voters(
    client, make_code_poll, votes_of
):
    question, made = make_code_poll(results="after_vote")
    yes, no = question["choices"]
    typed = codes.grouped(made[0]).lower()  # as a person types it
    response = await code_vote(client, question["id"], yes, typed)
    assert response.status == 302
    assert response.headers["Location"] == f"/poll/{question['id']}/results?code={made[0]}"
    assert votes_of(question["id"]) == {yes: 1, no: 0}
    results = await (await client.get(response.headers["Location"])).text()
    assert f'<li class="result mine" data-choice="{yes}">' in results
    assert "100" in results  # the counts: this reader has voted (after_vote)
    assert f"/poll/{question['id']}?code={made[0]}" in results  # back to voting keeps the code


async def test_a_vote_without_a_code_is_a_403_form_that_keeps_the_choice(client, make_code_poll, votes_of):
    question, _ = make_code_poll()
    yes, no = question["choices"]
    for missing in (None, "", "   "):
        response = await code_vote(client, question["id"], no, missing)
        assert response.status == 403
        page = await response.text()
        assert CODE_NEEDED in page
        assert f'value="{no}" checked' in page
        assert 'aria-invalid="true"' in page
    assert votes_of(question["id"]) == {yes: 0, no: 0}


async def test_a_wrong_code_is_a_403_with_a_clear_message_and_the_form_as_sent(
    client, make_code_poll, votes_of
):
    question, _ = make_code_poll()
    _, others = make_code_poll()
    yes = question["choices"][0]
    for wrong in ("7K3QX-M9PDA", codes.grouped(others[0])):  # unknown, or another poll's
        response = await code_vote(client, question["id"], yes, wrong)
        assert response.status == 403
        page = await response.text()
        assert CODE_WRONG.replace("'", "&#39;") in page
        assert f'value="{wrong}"' in page and f'value="{yes}" checked' in page
    assert sum(votes_of(question["id"]).values()) == 0


async def test_a_used_code_on_a_poll_that_locks_votes_is_a_403_used_up(
    client, anonymous, make_code_poll, votes_of
):
    question, made = make_code_poll(lock_votes=True)
    yes, no = question["choices"]
    assert (await code_vote(client, question["id"], yes, made[0])).status == 302
    for browser in (client, anonymous):
        response = await code_vote(browser, question["id"], no, made[0])
        assert response.status == 403
        assert CODE_USED in await response.text()
    assert votes_of(question["id"]) == {yes: 1, no: 0}


async def test_the_same_code_changes_its_ballot_from_another_browser(
    client, anonymous, make_code_poll, votes_of, sync_engine, vote_rows_match_counters
):
    question, made = make_code_poll()
    yes, no = question["choices"]
    assert (await code_vote(client, question["id"], yes, made[0])).status == 302
    changed = await code_vote(anonymous, question["id"], no, codes.grouped(made[0]))
    assert changed.status == 302
    assert changed.headers["Location"].endswith("&changed=1")
    assert VOTE_CHANGED in await (await anonymous.get(changed.headers["Location"])).text()
    assert votes_of(question["id"]) == {yes: 0, no: 1}
    assert len(stored.voters(sync_engine, question["id"])) == 1
    assert vote_rows_match_counters()


async def test_each_code_is_one_more_ballot_from_one_browser(client, make_code_poll, votes_of):
    question, made = make_code_poll(3)
    yes = question["choices"][0]
    for code in made:
        assert (await code_vote(client, question["id"], yes, code)).status == 302
    assert votes_of(question["id"])[yes] == 3


async def test_the_qr_link_fills_in_the_code_and_shows_the_codes_ballot(anonymous, make_code_poll):
    question, made = make_code_poll()
    yes = question["choices"][0]
    link = f"/poll/{question['id']}?code={made[0]}"
    page = await (await anonymous.get(link)).text()
    assert f'value="{codes.grouped(made[0])}"' in page
    assert "checked" not in page
    assert (await code_vote(anonymous, question["id"], yes, made[0])).status == 302
    again = await (await anonymous.get(link)).text()
    assert f'value="{yes}" checked' in again
    assert "Change my vote" in again
    assert "Change my vote" not in await (await anonymous.get(f"/poll/{question['id']}")).text()


async def test_two_browsers_racing_with_one_unused_code_cast_one_ballot(
    client, new_browser, make_code_poll, votes_of, sync_engine, vote_rows_match_counters
):
    question, made = make_code_poll(lock_votes=True)
    yes, no = question["choices"]
    answers = await asyncio.gather(
        *(code_vote(new_browser(client), question["id"], (yes, no)[n % 2], made[0]) for n in range(20))
    )
    assert sorted(a.status for a in answers) == [302] + [403] * 19
    assert sum(votes_of(question["id"]).values()) == 1
    assert len(stored.voters(sync_engine, question["id"])) == 1
    assert vote_rows_match_counters()


async def test_ballots_cast_before_codes_were_required_stay_counted(
    client, anonymous, make_question, vote, votes_of, run_sql
):
    question = make_question(choices=("Yes", "No"))
    yes = question["choices"][0]
    assert (await vote(client, question["id"], yes)).status == 302
    run_sql(f"UPDATE question SET requires_code = true WHERE id = {question['id']}")
    assert (await vote(anonymous, question["id"], yes)).status == 403
    assert votes_of(question["id"])[yes] == 1


async def test_a_poll_without_codes_ignores_a_code_and_counts_the_browsers_ballot(
    client, make_question, votes_of
):
    question = make_question(choices=("Yes", "No"))
    yes = question["choices"][0]
    assert (await code_vote(client, question["id"], yes, "7K3QX-M9PDA")).status == 302
    assert votes_of(question["id"])[yes] == 1


@pytest.mark.parametrize(
    "typed",
    [
        "7K3QX",
        "7K3QX-M9PDAX",
        "7K3QX-M9PDU",
        "7K3QX-M9PDÄ",
        "<script>alert(1)</script>",
        "x" * 10_000,
        "7K3QX\0M9PDA",
    ],
)
async def test_a_code_that_cannot_be_one_is_a_400_naming_the_field(client, make_code_poll, votes_of, typed):
    question, _ = make_code_poll()
    response = await code_vote(client, question["id"], question["choices"][0], typed)
    assert response.status == 400
    page = await response.text()
    assert CODE_SHAPE in page and 'id="code-error"' in page
    assert "<script>alert" not in page
    assert sum(votes_of(question["id"]).values()) == 0


async def test_a_code_sent_as_a_file_is_a_400(client, make_code_poll):
    question, _ = make_code_poll()
    form = aiohttp.FormData()
    form.add_field("choice", str(question["choices"][0]))
    form.add_field("code", b"7K3QXM9PDA", filename="code.txt")
    response = await client.post(f"/poll/{question['id']}/vote", data=form, allow_redirects=False)
    assert response.status == 400


@pytest.mark.parametrize("brought", ["nonsense", "ü" * 50, "x" * 5000, "", "7K3QX-M9PDA"])
async def test_a_strange_code_in_the_address_is_shown_on_the_form_never_a_500(
    anonymous, make_code_poll, brought
):
    question, _ = make_code_poll()
    for path in (f"/poll/{question['id']}", f"/poll/{question['id']}/results"):
        response = await anonymous.get(path, params={"code": brought})
        assert response.status == 200
        assert brought[:40] in await response.text() or path.endswith("results")


async def test_a_refused_code_is_explained_in_the_readers_language(anonymous, make_code_poll):
    question, _ = make_code_poll()
    response = await code_vote(
        anonymous, question["id"], question["choices"][0], "7K3QX-M9PDA", headers={"Accept-Language": "de"}
    )
    assert response.status == 403
    page = await response.text()
    assert "Das ist keiner der Abstimmungscodes dieser Umfrage." in page
    assert "Ihr Abstimmungscode" in page


async def test_a_ranked_poll_that_requires_a_code_counts_one_ranking_per_code(
    client, anonymous, make_question, config, sync_engine
):
    question = make_question("Which talk first?", choices=("A", "B", "C"), kind="ranked", requires_code=True)
    made = codes.batch_codes(codes.new_seed(), 1)
    key = config["voter_codes_key"].encode()
    with sync_engine.begin() as conn:
        conn.execute(
            schema.voter_code.insert().values(
                question_id=question["id"], code_hash=codes.code_hash(key, question["id"], made[0])
            )
        )
    a, b, c = question["choices"]
    path = f"/poll/{question['id']}/rank"
    form = await (await client.get(f"/poll/{question['id']}")).text()
    assert 'name="code"' in form
    ranking = [(f"rank-{a}", "2"), (f"rank-{b}", "1")]
    refused = await client.post(path, data=ranking, allow_redirects=False)
    assert refused.status == 403
    page = await refused.text()
    assert CODE_NEEDED in page and 'aria-invalid="true"' in page
    assert '<option value="1" selected>' in page  # the ranking as sent
    counted = await client.post(path, data=[*ranking, ("code", made[0].lower())], allow_redirects=False)
    assert counted.status == 302
    changed = await anonymous.post(
        path, data=[(f"rank-{c}", "1"), ("code", codes.grouped(made[0]))], allow_redirects=False
    )
    assert changed.status == 302 and changed.headers["Location"].endswith("?changed=1")
    assert len(stored.voters(sync_engine, question["id"])) == 1
    wrong = await anonymous.post(
        path, data=[(f"rank-{c}", "1"), ("code", "7K3QX-M9PDA")], allow_redirects=False
    )
    assert wrong.status == 403
    bad = await anonymous.post(path, data=[(f"rank-{c}", "1"), ("code", "nonsense")], allow_redirects=False)
    assert bad.status == 400 and CODE_SHAPE in await bad.text()


async def test_a_ranked_polls_qr_link_fills_in_the_code_and_shows_its_ranking(
    anonymous, make_question, config, sync_engine
):
    question = make_question("Which talk first?", choices=("A", "B"), kind="ranked", requires_code=True)
    code = codes.batch_codes(codes.new_seed(), 1)[0]
    key = config["voter_codes_key"].encode()
    with sync_engine.begin() as conn:
        conn.execute(
            schema.voter_code.insert().values(
                question_id=question["id"], code_hash=codes.code_hash(key, question["id"], code)
            )
        )
    b = question["choices"][1]
    link = f"/poll/{question['id']}?code={codes.grouped(code)}"
    assert f'value="{codes.grouped(code)}"' in await (await anonymous.get(link)).text()
    voted = await anonymous.post(
        f"/poll/{question['id']}/rank", data=[(f"rank-{b}", "1"), ("code", code)], allow_redirects=False
    )
    assert voted.status == 302
    again = await (await anonymous.get(link)).text()
    assert "You ranked the choices as shown below." in again
    assert f'value="{codes.grouped(code)}"' in again


async def test_a_codes_results_offer_no_remove_my_vote_which_is_the_browsers(client, make_code_poll):
    question, made = make_code_poll()
    voted = await code_vote(client, question["id"], question["choices"][0], made[0])
    page = await (await client.get(voted.headers["Location"])).text()
    assert "(your vote)" in page
    assert "Remove my vote" not in page


async def test_the_privacy_page_says_what_is_kept_of_voter_codes(client):
    page = await (await client.get("/privacy")).text()
    assert "Only a fingerprint (a keyed hash) of each code is kept, never the code itself" in page
