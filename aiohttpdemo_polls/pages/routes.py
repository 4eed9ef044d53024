"""The public pages' addresses, each named for `url_for` and templates' `url()`."""

from aiohttp import web

from ..web.routes import POLL
from . import dates, health, language, present, privacy, ranked, robots, views


def setup(app: web.Application) -> None:
    router = app.router
    router.add_get("/", views.index, name="index")
    router.add_get(POLL, views.poll, name="poll")
    router.add_post(POLL + "/vote", views.vote, name="vote")
    router.add_post(POLL + "/rank", ranked.rank, name="rank")  # a ranked poll's ballot
    router.add_post(POLL + "/remove-vote", views.remove_vote, name="remove_vote")
    router.add_get(POLL + "/results", views.results, name="results")
    # A date poll's row: its answers, or (the `remove` button) taking it out.
    router.add_post(POLL + "/answer", dates.answer, name="answer")
    # A settled date poll's calendar file; a 404 before.
    router.add_get(POLL + "/event.ics", dates.event_ics, name="event_ics")
    # For a projector: the question, a QR code of the poll's link, the live results.
    router.add_get(POLL + "/present", present.present, name="present")
    # The switch on every page: sets the polls_lang cookie, then back to the page.
    router.add_post("/language", language.choose_language, name="language")
    # What the site stores and for how long; linked from every page's footer.
    router.add_get("/privacy", privacy.privacy, name="privacy")
    router.add_get("/healthz", health.healthz, name="healthz")
    router.add_get("/robots.txt", robots.robots, name="robots")
