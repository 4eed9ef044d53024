"""QR codes drawn on the server as SVG (segno): no script, no request to another site. For the
presenter view's link and for voter codes' cards (maker/codes.py)."""

import functools

import segno
from markupsafe import Markup


@functools.lru_cache(maxsize=256)
def svg(text: str) -> Markup:
    """`text` as an inline SVG QR code that scales to any size.

    Black modules on a white quiet zone in both colour schemes: phone cameras read dark on
    light reliably, and the colours are SVG attributes that the page's CSS does not touch.
    Kept per link: the presenter page is drawn again after every vote, its link never changes.
    """
    return drawn(text)


def drawn(text: str) -> Markup:
    """`text` as an inline SVG QR code, drawn now: for codes drawn once each, which a cache
    would only churn (a voter code's card: about 4 ms each, so callers draw many off the loop)."""
    code = segno.make(text, error="m")
    return Markup(code.svg_inline(scale=1, dark="#000", light="#fff", omitsize=True, svgclass="qr-code"))
