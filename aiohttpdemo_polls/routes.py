"""Every URL of the app, each with a name for `url_for` and templates' `url()`."""

from aiohttp import web

from . import health, settings, views, views_live, views_new

STATIC = settings.PROJECT_ROOT / "static"
# Digits only: anything else under /poll/ is a 404 from the router itself.
POLL = r"/poll/{question_id:\d+}"


def setup(app: web.Application, serve_static: bool) -> None:
    router = app.router
    router.add_get("/", views.index, name="index")
    router.add_get("/poll/new", views_new.new_poll, name="new_poll")
    router.add_get(POLL, views.poll, name="poll")
    router.add_post(POLL + "/vote", views.vote, name="vote")
    router.add_get(POLL + "/results", views.results, name="results")
    router.add_get(POLL + "/live", views_live.live, name="live")
    router.add_get("/healthz", health.healthz, name="healthz")
    if serve_static:
        # In production nginx serves these; the URLs stay the same.
        router.add_static("/static/", STATIC, name="static")
