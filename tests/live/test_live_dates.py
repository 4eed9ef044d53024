"""Live results of a date poll: its frames carry each option's if-need-be count and how many
rows it has, so any answer, even a row of all "no", reaches the grid's watchers."""

from live_frames import frame


async def test_any_answer_to_a_date_poll_reaches_its_watchers(client, anonymous, make_date_poll):
    poll = await make_date_poll()
    async with client.ws_connect(f"/poll/{poll['id']}/live") as ws:
        snapshot = await frame(ws)
        assert snapshot["participants"] == 0
        assert [c["if_need_be"] for c in snapshot["choices"]] == [0, 0]
        data = [("name", "Nobody"), *((f"answer-{o}", "no") for o in poll["options"])]
        await anonymous.post(f"/poll/{poll['id']}/answer", data=data, allow_redirects=False)
        update = await frame(ws, timeout=1.0)
        assert update["participants"] == 1 and update["total"] == 0
        data = [("name", "Maybe"), *((f"answer-{o}", "if_need_be") for o in poll["options"])]
        await client.post(f"/poll/{poll['id']}/answer", data=data, allow_redirects=False)
        update = await frame(ws, timeout=1.0)
        assert update["participants"] == 2
        assert [c["if_need_be"] for c in update["choices"]] == [1, 1]


async def test_frames_of_other_polls_say_nothing_of_date_polls(client, make_question):
    question = make_question()
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        snapshot = await frame(ws)
    assert "participants" not in snapshot and "if_need_be" not in snapshot["choices"][0]
