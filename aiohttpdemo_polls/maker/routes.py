"""The maker's addresses: the new-poll form, and the private pages behind a poll's manage token."""

from aiohttp import web

from ..web import headers
from ..web.routes import POLL, add_get
from . import codes, exports, manage, new

MANAGE = POLL + "/manage/{token:[A-Za-z0-9_-]+}"
# A batch of voter codes: how many, and the seed that gives them (maker/codes.py).
CODES_BATCH = "/codes/{count:[1-9][0-9]{0,4}}/{seed:[A-Za-z0-9_-]{43}}"


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
    # Voter codes: made by a POST, then given by their batch's address while it lasts.
    _behind_token(app, "/codes", "codes_new").add_route("POST", codes.make_codes)
    add_get(_behind_token(app, CODES_BATCH, "codes_batch"), codes.codes_batch)
    add_get(_behind_token(app, CODES_BATCH + ".csv", "codes_csv"), codes.codes_csv)
    add_get(_behind_token(app, CODES_BATCH + "/cards", "codes_cards"), codes.codes_cards)


def _behind_token(app: web.Application, suffix: str, name: str) -> web.Resource:
    """The resource at MANAGE + `suffix`: private, as every address holding the token must be."""
    return headers.private(app, app.router.add_resource(MANAGE + suffix, name=name))
