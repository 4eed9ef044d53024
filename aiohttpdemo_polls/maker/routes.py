"""The maker's addresses: the new-poll form, and the private pages behind a poll's manage token."""

from aiohttp import web

from ..web import headers
from ..web.routes import POLL, add_get
from . import exports, manage, new

MANAGE = POLL + "/manage/{token:[A-Za-z0-9_-]+}"


def setup(app: web.Application) -> None:
    router = app.router
    new_poll = router.add_resource("/poll/new", name="new_poll")
    add_get(new_poll, new.new_poll)
    new_poll.add_route("POST", new.create_poll)
    router.add_get("/poll/deleted", manage.poll_deleted, name="poll_deleted")
    # The maker's page; the token is checked against its stored hash by the view.
    managed = _behind_token(app, "", "manage")
    add_get(managed, manage.manage)
    managed.add_route("POST", manage.manage_action)
    # The maker's results as files, behind the same token.
    add_get(_behind_token(app, "/results.csv", "results_csv"), exports.results_csv)
    add_get(_behind_token(app, "/results.json", "results_json"), exports.results_json)
    add_get(_behind_token(app, "/ballots.csv", "ballots_csv"), exports.ballots_csv)


def _behind_token(app: web.Application, suffix: str, name: str) -> web.Resource:
    """The resource at MANAGE + `suffix`: private, as every address holding the token must be."""
    return headers.private(app, app.router.add_resource(MANAGE + suffix, name=name))
