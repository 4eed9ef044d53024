async def test_smoke(client, make_poll):
    r = await client.get("/poll/new?kind=dates")
    assert r.status == 200, await r.text()
    data = [
        ("kind", "dates"),
        ("question_text", "Team dinner"),
        ("timezone", "Europe/Berlin"),
        ("duration", "90"),
        ("day", "2030-01-15"),
        ("times", "10:00, 18:00"),
        ("day", "2030-07-15"),
        ("times", "10:00"),
        ("day", "2030-03-01"),
        ("times", ""),
    ]
    r = await client.post("/poll/new", data=data, allow_redirects=False)
    assert r.status == 303, await r.text()
    r = await client.get("/poll/1")
    text = await r.text()
    __import__("pathlib").Path("/tmp/dates-scratch/grid.html").write_text(text)
    assert r.status == 200
    form = [("name", "Ada")] + [
        (f"answer-{i}", a) for i, a in zip(range(1, 5), ["yes", "if_need_be", "no", "yes"])
    ]
    r = await client.post("/poll/1/answer", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    r = await client.get(r.headers["Location"])
    text = await r.text()
    __import__("pathlib").Path("/tmp/dates-scratch/grid2.html").write_text(text)
    assert "Ada" in text


async def test_smoke_manage(client, make_poll):
    data = [
        ("kind", "dates"),
        ("question_text", "Team dinner"),
        ("timezone", "Europe/Berlin"),
        ("duration", "90"),
        ("day", "2030-01-15"),
        ("times", "10:00, 18:00"),
        ("day", "2030-03-01"),
        ("times", ""),
    ]
    r = await client.post("/poll/new", data=data, allow_redirects=False)
    manage = r.headers["Location"]
    form = [("name", "Ada")] + [(f"answer-{i}", a) for i, a in zip(range(1, 4), ["yes", "if_need_be", "no"])]
    r = await client.post("/poll/1/answer", data=form, allow_redirects=False)
    r = await client.get(manage)
    text = await r.text()
    assert r.status == 200, text
    __import__("pathlib").Path("/tmp/dates-scratch/manage.html").write_text(text)
    r = await client.post(manage, data={"action": "settle", "option": "2"}, allow_redirects=False)
    assert r.status == 303, await r.text()
    r = await client.get("/poll/1/event.ics")
    assert r.status == 200
    print(await r.text())
    r = await client.get("/poll/1")
    __import__("pathlib").Path("/tmp/dates-scratch/settled.html").write_text(await r.text())
