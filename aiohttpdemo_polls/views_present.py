"""The presenter view: a poll on a projector, with a QR code of its public link and the
same live results as its results page. Not cached: its links name the host it was reached by.
"""

import aiohttp_jinja2
from aiohttp import web

from . import links, qr, views


async def present(request: web.Request) -> web.Response:
    """The question, its live results, and its public link as a QR code and as text."""
    question_id = views.poll_id(request)
    content = await views.published_content(request, question_id)
    public_link = links.absolute(request, request.app.router["poll"].url_for(question_id=str(question_id)))
    context = {
        "request": request,
        "question": content.question,
        "choices": content.choices,
        "show_counts": await views.may_see_counts(request, content.question),
        "public_link": public_link,
        "short_link": links.short(public_link),
        "qr_code": qr.svg(public_link),
    }
    return aiohttp_jinja2.render_template("present.html", request, context)
