"""The maker's addresses: the new-poll form, and the private pages behind a poll's manage token."""

from aiohttp import web

from ..web.routes import POLL, add_get
from . import exports, manage, new

MANAGE = POLL + "/manage/{token:[A-Za-z0-9_-]+}"


def setup(app: web.Application) -> None:
    router = app.router
    new_poll = router.add_resource("/poll/new", name="new_poll")
    add_get(new_poll, new.new_poll)
    new_poll.add_route("POST", new.create_poll)
    router.add_get("/poll/deleted", manage.poll_deleted, name="poll_deleted")
    # The maker's private page; the token is checked against its stored hash by the view.
    managed = router.add_resource(MANAGE, name="manage")
    add_get(managed, manage.manage)
    managed.add_route("POST", manage.manage_action)
    # The maker's results as files, behind the same token.
    router.add_get(MANAGE + "/results.csv", exports.results_csv, name="results_csv")
    router.add_get(MANAGE + "/results.json", exports.results_json, name="results_json")
    router.add_get(MANAGE + "/ballots.csv", exports.ballots_csv, name="ballots_csv")
