"""The presenter view: a poll on a projector, with a QR code of its public link and the
same live results as its results page.
"""

from aiohttp import web

from ..web import links, qr
from ..web.content import cached_page, may_see_counts, poll_expiry, published_content, render_page
from ..web.request import poll_id
from . import dates, kinds


async def present(request: web.Request) -> web.Response:
    """The question, its live results, and its public link as a QR code and as text.

    Cached like the other pages, one copy for readers who may see the counts and one for
    those who may not yet: drawing the QR code is the dearest part of any page.
    """
    question_id = poll_id(request)
    content = await published_content(request, question_id)
    pages = kinds.PAGES.get(content.question.kind)
    if pages is not None and pages.present is not None:
        return await pages.present(request, content)
    show_counts = await may_see_counts(request, content.question)

    async def render() -> tuple[bytes, float]:
        question, choices = await published_content(request, question_id)
        public_link = links.absolute(
            request, request.app.router["poll"].url_for(question_id=str(question_id))
        )
        context = {
            "question": question,
            "choices": choices,
            "show_counts": show_counts,
            "public_link": public_link,
            "short_link": links.short(public_link),
            "qr_code": qr.svg(public_link),
        }
        if question.kind == dates.KIND:  # its totals per option, as its grid's foot shows them
            context |= await dates.present_context(request, question, choices)
        return render_page(request, "present.html", context), poll_expiry(question)

    return await cached_page(request, ("present", question_id, show_counts), render)
