"""The JSON API as an application of its own, nested under /api: its routes, and errors written
as problem documents (problems.py) whoever raised them."""

from aiohttp import web

from ..web.errors import error_writer_key
from ..web.routes import add_get
from . import problems, views

PREFIX = "/api"


def setup(app: web.Application) -> None:
    api = web.Application()
    api[error_writer_key] = problems.response
    router = api.router
    router.add_get("/openapi.json", views.openapi_json, name="api_openapi")
    polls = router.add_resource("/polls", name="api_polls")
    add_get(polls, views.list_polls)
    polls.add_route("POST", views.create_poll)
    router.add_get("/polls/{question_id:\\d+}", views.poll, name="api_poll")
    ballot = router.add_resource("/polls/{question_id:\\d+}/vote", name="api_vote")
    ballot.add_route("POST", views.vote)
    ballot.add_route("DELETE", views.remove_vote)
    app.add_subapp(PREFIX, api)
