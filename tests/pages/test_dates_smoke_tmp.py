async def test_smoke(client, make_poll):
    r = await client.get("/poll/new?kind=dates")
    assert r.status == 200, await r.text()
    data = [("kind","dates"),("question_text","Team dinner"),("timezone","Europe/Berlin"),("duration","90"),
            ("day","2030-01-15"),("times","10:00, 18:00"),("day","2030-07-15"),("times","10:00"),("day","2030-03-01"),("times","")]
    r = await client.post("/poll/new", data=data, allow_redirects=False)
    assert r.status == 303, await r.text()
    r = await client.get("/poll/1")
    text = await r.text()
    __import__("pathlib").Path("/tmp/dates-scratch/grid.html").write_text(text)
    assert r.status == 200
    form = [("name","Ada")] + [(f"answer-{i}", a) for i, a in zip(range(1,5), ["yes","if_need_be","no","yes"])]
    r = await client.post("/poll/1/answer", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    r = await client.get(r.headers["Location"])
    text = await r.text()
    __import__("pathlib").Path("/tmp/dates-scratch/grid2.html").write_text(text)
    assert "Ada" in text
