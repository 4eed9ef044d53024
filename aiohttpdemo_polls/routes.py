"""Every URL of the app, each with a name for `url_for` and templates' `url()`."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import (
    api,
    exports,
    health,
    robots,
    settings,
    views,
    views_language,
    views_live,
    views_manage,
    views_new,
    views_present,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = settings.ASSETS / "static"
# Digits only: anything else under /poll/ is a 404 from the router itself.
POLL = r"/poll/{question_id:\d+}"
MANAGE = POLL + "/manage/{token:[A-Za-z0-9_-]+}"


def setup(app: web.Application, serve_static: bool) -> None:
    router = app.router
    router.add_get("/", views.index, name="index")
    new_poll = router.add_resource("/poll/new", name="new_poll")
    _add_get(new_poll, views_new.new_poll)
    new_poll.add_route("POST", views_new.create_poll)
    router.add_get("/poll/deleted", views_manage.poll_deleted, name="poll_deleted")
    router.add_get(POLL, views.poll, name="poll")
    router.add_post(POLL + "/vote", views.vote, name="vote")
    router.add_get(POLL + "/results", views.results, name="results")
    # For a projector: the question, a QR code of the poll's link, the live results.
    router.add_get(POLL + "/present", views_present.present, name="present")
    router.add_get(POLL + "/live", views_live.live, name="live")
    # The switch on every page: sets the polls_lang cookie, then back to the page.
    router.add_post("/language", views_language.choose_language, name="language")
    router.add_get("/healthz", health.healthz, name="healthz")
    router.add_get("/robots.txt", robots.robots, name="robots")
    # The maker's private page; the token is checked against its stored hash by the view.
    manage = router.add_resource(MANAGE, name="manage")
    _add_get(manage, views_manage.manage)
    manage.add_route("POST", views_manage.manage_action)
    # The maker's results as files, behind the same token.
    router.add_get(MANAGE + "/results.csv", exports.results_csv, name="results_csv")
    router.add_get(MANAGE + "/results.json", exports.results_json, name="results_json")
    router.add_get(MANAGE + "/ballots.csv", exports.ballots_csv, name="ballots_csv")
    # The JSON API (api.py); its errors are problem documents (problems.py).
    router.add_get("/api/openapi.json", api.openapi_json, name="api_openapi")
    polls = router.add_resource("/api/polls", name="api_polls")
    _add_get(polls, api.list_polls)
    polls.add_route("POST", api.create_poll)
    router.add_get("/api/polls/{question_id:\\d+}", api.poll, name="api_poll")
    router.add_post("/api/polls/{question_id:\\d+}/vote", api.vote, name="api_vote")
    if serve_static:
        # In production nginx serves these; the URLs stay the same.
        router.add_static("/static/", STATIC, name="static")


def _add_get(resource: web.Resource, handler: Handler) -> None:
    """GET and HEAD, as `router.add_get` adds them: HEAD is due wherever GET is (RFC 9110),
    and `add_route("GET")` on a resource that takes POST too adds no HEAD by itself."""
    resource.add_route("HEAD", handler)
    resource.add_route("GET", handler)
