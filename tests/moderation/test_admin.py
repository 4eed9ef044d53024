"""The operator's /admin: the password and sign-in, its limit, the session cookie and its end,
the moderation page and its search, the actions and the audit log, and the headers of it all."""

import os
import pty
import select
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
import stored
from markupsafe import escape

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.moderation import admin as admin_views
from aiohttpdemo_polls.moderation import sessions
from aiohttpdemo_polls.store import admin, schema, tokens
from aiohttpdemo_polls.web.checks import CROSS_SITE

ADMIN_PAGES = ["/admin", "/admin/log"]


def audit(sync_engine) -> list[tuple]:
    with sync_engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(
                    schema.audit_log.c.action, schema.audit_log.c.question_id, schema.audit_log.c.reason
                ).order_by(schema.audit_log.c.id)
            )
        ]


def report(sync_engine, question_id: int, reason: str, text: str = "", minutes_ago: int = 0) -> None:
    with sync_engine.begin() as conn:
        conn.execute(
            schema.report.insert().values(
                question_id=question_id,
                reason=reason,
                text=text,
                created_at=sa.func.now() - timedelta(minutes=minutes_ago),
            )
        )


async def test_with_no_password_set_admin_says_how_to_set_one(client):
    response = await client.get("/admin")
    page = await response.text()
    assert response.status == 200
    assert "python -m aiohttpdemo_polls set-admin-password" in page and 'name="password"' not in page
    signing_in = await client.post(
        "/admin/sign-in", data={"password": "anything at all"}, allow_redirects=False
    )
    assert signing_in.status == 303 and "Set-Cookie" not in signing_in.headers


async def test_the_right_password_starts_a_session_with_a_strict_cookie(client, sign_in, sync_engine):
    assert 'name="password"' in await (await client.get("/admin")).text()
    response = await sign_in(client)
    assert response.status == 303 and response.headers["Location"] == "/admin"
    cookie = response.cookies[sessions.COOKIE]
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/admin"
    assert cookie["max-age"] == str(12 * 3600) and not cookie["secure"]
    with sync_engine.connect() as conn:  # only the token's hash is stored, 12 hours long
        row = conn.execute(
            sa.select(
                schema.admin_session.c.token_hash,
                schema.admin_session.c.expires_at - schema.admin_session.c.created_at,
            )
        ).one()
    assert bytes(row[0]) == tokens.hash_token(cookie.value) and row[1] == timedelta(hours=12)
    page = await (await client.get("/admin")).text()
    assert "Reported polls" in page and "Sign out" in page
    assert audit(sync_engine) == [("password_set", None, ""), ("sign_in", None, "signed in")]


async def test_under_https_the_session_cookie_is_secure(aiohttp_client, config, sign_in):
    client = await aiohttp_client(init_app(config={**config, "https": True}))
    response = await sign_in(
        client, headers={"Origin": str(client.make_url("/").origin()).replace("http", "https")}
    )
    assert response.status == 303 and response.cookies[sessions.COOKIE]["secure"] is True


async def test_a_wrong_password_is_a_403_form_and_a_logged_failure(client, sign_in, sync_engine):
    response = await sign_in(client, "not the password")
    assert response.status == 403 and sessions.COOKIE not in response.cookies
    assert f'id="password-error">{escape(admin_views.WRONG_PASSWORD)}' in await response.text()
    assert audit(sync_engine)[-1] == ("sign_in_failed", None, "wrong password")
    assert stored.rows(sync_engine, schema.admin_session) == 0


async def test_an_empty_password_is_a_400_naming_the_field(client, admin_password, sync_engine):
    response = await client.post("/admin/sign-in", data={"password": ""})
    assert response.status == 400
    assert f'id="password-error">{escape(admin_views.PASSWORD_REQUIRED)}' in await response.text()
    assert stored.rows(sync_engine, schema.sign_in_failure) == 0


async def test_five_failures_in_15_minutes_make_even_the_right_password_a_429(client, sign_in, sync_engine):
    for _ in range(5):
        assert (await sign_in(client, "guess guess guess")).status == 403
    refused = await sign_in(client)
    assert refused.status == 429 and sessions.COOKIE not in refused.cookies
    assert 890 <= int(refused.headers["Retry-After"]) <= 900
    assert admin_views.TOO_MANY_FAILURES.split(".")[0] in await refused.text()
    with sync_engine.begin() as conn:  # 16 minutes later the failures have left the window
        conn.execute(
            schema.sign_in_failure.update().values(
                created_at=sa.func.now() - sa.text("interval '16 minutes'")
            )
        )
    assert (await sign_in(client)).status == 303
    assert stored.rows(sync_engine, schema.sign_in_failure) == 0  # their addresses went with them


async def test_sign_out_ends_the_session_at_once(client, sign_in, sync_engine):
    await sign_in(client)
    response = await client.post("/admin/sign-out", allow_redirects=False)
    assert response.status == 303 and response.cookies[sessions.COOKIE].value == ""
    assert stored.rows(sync_engine, schema.admin_session) == 0
    assert 'name="password"' in await (await client.get("/admin")).text()
    assert [row[0] for row in audit(sync_engine)][-1] == "sign_out"


async def test_a_session_ends_after_12_hours(client, sign_in, sync_engine):
    await sign_in(client)
    with sync_engine.begin() as conn:
        conn.execute(
            schema.admin_session.update().values(expires_at=sa.func.now() - sa.text("interval '1 second'"))
        )
    assert 'name="password"' in await (await client.get("/admin")).text()
    assert (await client.get("/admin/log", allow_redirects=False)).status == 303


async def test_a_new_password_ends_every_session(client, sign_in, sync_engine):
    await sign_in(client)
    with sync_engine.begin() as conn:
        admin.set_password(
            conn, "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
        )
    assert stored.rows(sync_engine, schema.admin_session) == 0
    assert 'name="password"' in await (await client.get("/admin")).text()


async def test_the_moderation_page_lists_reported_polls_most_reported_then_most_recent(
    client, sign_in, make_question, sync_engine
):
    once_old = make_question("Reported once, long ago?")
    twice = make_question("Reported twice?")
    once_new = make_question("Reported once, just now?")
    make_question("Never reported?")
    report(sync_engine, once_old["id"], "other", "Old.", minutes_ago=60)
    report(sync_engine, twice["id"], "spam", "Pills <b>cheap</b>.", minutes_ago=30)
    report(sync_engine, twice["id"], "harassment", "Names a colleague.", minutes_ago=20)
    report(sync_engine, once_new["id"], "illegal")
    await sign_in(client)
    page = await (await client.get("/admin")).text()
    reported = page.split('id="reported-title"')[1].split('id="hidden-title"')[0]
    order = [
        reported.index(text)
        for text in ("Reported twice?", "Reported once, just now?", "Reported once, long ago?")
    ]
    assert order == sorted(order) and "Never reported?" not in page
    assert "2 reports" in reported and "Spam or advertising" in reported and "Harassment or hate" in reported
    assert "Pills &lt;b&gt;cheap&lt;/b&gt;." in reported and "Names a colleague." in reported
    assert "Illegal content" in reported


async def test_search_finds_any_poll_by_the_words_of_its_question(client, sign_in, make_question):
    make_question("Best PIZZA topping in town?")
    make_question("Pizza or pasta tonight?")
    make_question("Scheduled pizza party?", days=5)
    make_question("100% sure_thing?")
    await sign_in(client)

    async def found(words: str) -> str:
        page = await (await client.get("/admin", params={"q": words})).text()
        return page.split('id="found-title"')[1].split('id="reported-title"')[0]

    hits = await found("pizza topping")
    assert "Best PIZZA topping in town?" in hits and "Pizza or pasta" not in hits
    hits = await found("PIZZA")
    assert all(q in hits for q in ("Best PIZZA", "Pizza or pasta", "Scheduled pizza party?"))
    assert "100% sure_thing?" in await found("100%")
    # ILIKE's wildcards are taken literally: "p%a" is not "pizza", nor "s_re" "sure".
    assert "No poll" in await found("p%a") and "No poll" in await found("s_re")


async def test_a_search_over_200_characters_is_a_400(client, sign_in):
    await sign_in(client)
    response = await client.get("/admin", params={"q": "x" * 201})
    assert response.status == 400 and admin_views.SEARCH_TOO_LONG in await response.text()


async def test_hide_restore_and_delete_are_logged_with_their_reasons(
    client, sign_in, make_question, sync_engine, vote, anonymous
):
    question = make_question("Spam?")
    assert (await vote(anonymous, question["id"], question["choices"][0])).status == 302
    report(sync_engine, question["id"], "spam")
    await sign_in(client)
    path = f"/admin/poll/{question['id']}"
    hidden = await client.post(path, data={"action": "hide", "reason": "Adverts."}, allow_redirects=False)
    assert hidden.status == 303 and hidden.headers["Location"] == "/admin?done=hide"
    again = await client.post(path, data={"action": "hide", "reason": "Twice."}, allow_redirects=False)
    assert again.headers["Location"] == "/admin?done=unchanged"
    page = await (await client.get("/admin")).text()
    assert (
        "Spam?" in page.split('id="hidden-title"')[1]
        and admin_views.NOTICES["hide"].split(":")[0] not in page
    )
    restored = await client.post(path, data={"action": "restore", "reason": "Not spam after all.", "q": "sp"})
    assert restored.status == 200 and str(restored.url).endswith("/admin?done=restore&q=sp")
    asked = await client.post(path, data={"action": "delete", "reason": "Spam again."})
    assert asked.status == 200 and "Delete this poll?" in await asked.text()
    assert stored.rows(sync_engine, schema.question) == 1
    deleted = await client.post(
        path, data={"action": "delete", "reason": "Spam again.", "confirm": "yes"}, allow_redirects=False
    )
    assert deleted.status == 303
    for table in (schema.question, schema.choice, schema.ballot, schema.vote, schema.report):
        assert stored.rows(sync_engine, table) == 0, table.name
    assert audit(sync_engine)[2:] == [
        ("hide", question["id"], "Adverts."),
        ("restore", question["id"], "Not spam after all."),
        ("delete", question["id"], "Spam again."),
    ]
    log = await (await client.get("/admin/log")).text()
    for text in ("Hid a poll", "Restored a poll", "Deleted a poll", "Signed in", "Not spam after all."):
        assert text in log


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"action": "hide"}, "reason", admin_views.REASON_REQUIRED),
        ({"action": "hide", "reason": "   "}, "reason", admin_views.REASON_REQUIRED),
        ({"action": "hide", "reason": "x" * 501}, "reason", admin_views.REASON_TOO_LONG),
        ({"action": "hide", "reason": "a\x00b"}, "reason", admin_views.REASON_CONTROL),
        ({"action": "burn", "reason": "Why not."}, "action", admin_views.UNKNOWN_ACTION),
        ({"reason": "Why not."}, "action", admin_views.UNKNOWN_ACTION),
    ],
)
async def test_a_bad_action_form_is_a_400_naming_the_field_and_changes_nothing(
    client, sign_in, make_question, sync_engine, data, field, message
):
    question = make_question()
    await sign_in(client)
    response = await client.post(f"/admin/poll/{question['id']}", data=data)
    assert response.status == 400
    assert f'id="{field}-error">{escape(message)}' in await response.text()
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(schema.question.c.hidden_at)).scalar_one() is None
    assert [row[0] for row in audit(sync_engine)] == ["password_set", "sign_in"]


async def test_an_action_on_an_unknown_poll_is_a_404(client, sign_in):
    await sign_in(client)
    response = await client.post("/admin/poll/999999", data={"action": "hide", "reason": "Gone?"})
    assert response.status == 404


async def test_the_audit_log_cannot_be_changed_or_deleted_even_with_sql(client, sign_in, sync_engine):
    await sign_in(client)
    for statement in ("UPDATE audit_log SET reason = 'edited'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.InternalError, match="append-only"), sync_engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert len(audit(sync_engine)) == 2


async def test_no_address_on_the_site_edits_the_audit_log(client, sign_in):
    # The log has one page, to read: every method but GET and HEAD is refused there.
    await sign_in(client)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert (await client.request(method, "/admin/log")).status == 405


async def test_the_audit_log_is_paged_newest_first(client, sign_in, sync_engine):
    await sign_in(client)
    with sync_engine.begin() as conn:
        conn.execute(
            schema.audit_log.insert(),
            [{"action": "hide", "question_id": n, "reason": f"Reason {n:02}."} for n in range(1, 31)],
        )
    first = await (await client.get("/admin/log")).text()
    assert first.index("Reason 30.") < first.index("Reason 29.") and "Reason 05." not in first
    assert "Reason 05." in await (await client.get("/admin/log?page=2")).text()
    assert (await client.get("/admin/log?page=9")).status == 404
    assert (await client.get("/admin/log?page=x")).status == 404


@pytest.mark.parametrize("password_set", [False, True])
@pytest.mark.parametrize("signed_in", [False, True])
async def test_every_admin_page_is_noindex_and_no_store(
    client, admin_password, sign_in, sync_engine, password_set, signed_in
):
    if signed_in:
        await sign_in(client)
    if not password_set:
        with sync_engine.begin() as conn:
            conn.execute(schema.admin_password.delete())
    answers = [await client.get(path, allow_redirects=False) for path in ADMIN_PAGES]
    answers.append(await client.post("/admin/poll/999999", data={"action": "hide"}, allow_redirects=False))
    answers.append(await client.post("/admin/sign-in", data={"password": ""}, allow_redirects=False))
    for response in answers:
        assert response.headers["X-Robots-Tag"] == "noindex, nofollow", response.url
        assert "no-store" in response.headers["Cache-Control"], response.url
        page = await response.text()
        if response.status != 303:
            assert '<meta name="robots" content="noindex' in page or response.status >= 400, response.url


@pytest.mark.parametrize("path", ["/admin/sign-in", "/admin/sign-out", "/admin/poll/1"])
async def test_admin_forms_sent_from_another_site_are_refused(
    client, sign_in, make_question, sync_engine, path
):
    make_question()
    await sign_in(client)
    data = {"password": "correct horse battery staple", "action": "hide", "reason": "Evil."}
    response = await client.post(path, data=data, headers={"Origin": "https://evil.example"})
    assert response.status == 403 and CROSS_SITE in await response.text()
    assert stored.rows(sync_engine, schema.admin_session) == 1
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(schema.question.c.hidden_at)).scalar_one() is None


def set_password(database_url: str, *args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "aiohttpdemo_polls",
            "set-admin-password",
            *args,
            "-c",
            "config/polls_test.yaml",
        ],
        input=stdin,
        capture_output=True,
        text=True,
        env={"POLLS_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


async def test_set_admin_password_reads_stdin_and_stores_an_argon2_hash(
    database_url, sync_engine, client, sign_in
):
    done = set_password(database_url, stdin="a long and secret phrase\n")
    assert done.returncode == 0, done.stderr
    with sync_engine.connect() as conn:
        stored_hash = conn.execute(sa.select(schema.admin_password.c.hash)).scalar_one()
    assert stored_hash.startswith("$argon2id$") and "secret" not in stored_hash
    assert (await sign_in(client, "a long and secret phrase")).status == 303


def test_set_admin_password_takes_no_password_as_an_argument(database_url, sync_engine):
    done = set_password(database_url, "a long and secret phrase", stdin="")
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr
    short = set_password(database_url, stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    assert stored.rows(sync_engine, schema.admin_password) == 0


PROMPTS = (b"New /admin password:", b"Same again:")


def at_a_terminal(database_url: str, *typed: str) -> tuple[int, str]:
    """Run set-admin-password on a pseudo-terminal, typing each line once its prompt shows
    (getpass drops what was typed before); its exit status and all the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the terminal as stdin, stdout and stderr
        os.environ["POLLS_DATABASE_URL"] = database_url
        command = ["-m", "aiohttpdemo_polls", "set-admin-password", "-c", "config/polls_test.yaml"]
        os.execv(sys.executable, [sys.executable, *command])
    shown, pending, deadline = b"", list(typed), time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child has closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            prompts = sum(shown.count(prompt) for prompt in PROMPTS)
            if pending and prompts > len(typed) - len(pending):
                os.write(fd, pending.pop(0).encode() + b"\n")
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_set_admin_password_at_a_terminal_asks_twice_and_shows_nothing_typed(database_url, sync_engine):
    status, shown = at_a_terminal(database_url, "a long and secret phrase", "a long and secret phrase")
    assert status == 0, shown
    assert "New /admin password:" in shown and "Same again:" in shown and "secret" not in shown
    assert stored.rows(sync_engine, schema.admin_password) == 1
    status, shown = at_a_terminal(database_url, "a long and secret phrase", "another phrase, mistyped")
    assert status == 2 and "the two passwords differ" in shown
