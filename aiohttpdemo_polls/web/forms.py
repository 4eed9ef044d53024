"""Reading a form from a request: one strict reading for every form of the site, so one rule
says what text a form may carry. A body that cannot be read is a 400, never a 500."""

from urllib.parse import parse_qsl

from aiohttp import BadContentDispositionHeader, BadContentDispositionParam, web
from aiohttp.http_exceptions import BadHttpMessage
from multidict import MultiDict, MultiDictProxy

from .i18n import N_

NOT_UTF8 = N_("The form could not be read: its text is not valid UTF-8.")
FORM_MALFORMED = N_("The form could not be read: its body is not a well-formed form.")
URLENCODED = ("application/x-www-form-urlencoded", "")  # aiohttp reads a body of no type as one


async def read_form(request: web.Request) -> MultiDictProxy:
    """The request's form fields; a body that is not readable text is a 400 page, not a 500.

    A body over the size limit is a 413 whatever its content type: aiohttp checks the
    limit only while reading a form, and does not read a body of another type at all.
    Every form of the site is read here, so one rule says what text a form may carry.
    """
    if request.content_length is not None and request.content_length > request.client_max_size:
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.client_max_size, actual_size=request.content_length
        )
    try:
        form = await request.post()  # aiohttp's limits: size, number of fields, multipart
        if request.content_type in URLENCODED:
            form = _strictly_urlencoded(await request.read(), request.charset or "utf-8")
    except (UnicodeError, LookupError) as exc:
        # Bytes that are not UTF-8 (raw or %-escaped), or a charset Python does not know.
        raise web.HTTPBadRequest(text=NOT_UTF8) from exc
    except (ValueError, BadHttpMessage, BadContentDispositionHeader, BadContentDispositionParam) as exc:
        # A multipart body that is not one: no boundary, a part without a name, a part's
        # header with a control character. aiohttp only warns of a broken Content-Disposition
        # (then finds no name); where warnings are errors, it raises them.
        raise web.HTTPBadRequest(text=FORM_MALFORMED) from exc
    if not all(is_text(name) and is_text(value) for name, value in form.items()):
        raise web.HTTPBadRequest(text=NOT_UTF8)
    return form


def _strictly_urlencoded(body: bytes, charset: str) -> MultiDictProxy:
    """The fields again, read as aiohttp does but strictly: it reads an escape that is not
    text (%FF, %ED%A0%80, an overlong %C0%AF) as U+FFFD, which would then be stored."""
    text = body.rstrip().decode(charset)
    fields = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict")
    return MultiDictProxy(MultiDict(fields))


def is_text(value: object) -> bool:
    """False for a str UTF-8 cannot carry: one with a lone surrogate, which a declared charset
    (utf-7, unicode_escape), a JSON escape or a part's header can make. Uploads pass."""
    if not isinstance(value, str) or value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
