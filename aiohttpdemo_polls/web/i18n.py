"""Languages: which one a request gets, its catalog, and dates and numbers its way. Templates'
gettext calls read the language from the context's `request`, so one Environment serves
every language and nothing is swapped between renders.
"""

import copy
import functools
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from babel import Locale, negotiate_locale
from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("en", "de", "fr", "es")
DEFAULT = "en"
# Each language's name in itself, for the switch on every page.
NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
COOKIE = "polls_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
DOMAIN = "messages"
# Longer Accept-Language values are cut here: no browser sends more; parsing and the cache stay small.
MAX_HEADER = 512

language_key = web.RequestKey("language", str)


def N_(msgid: str, **params: Any) -> str:
    """Mark `msgid` for the catalogs; it is translated when a page shows it (`|translate`).

    With `params`, a `Message` that fills `%(name)s` placeholders after translating."""
    return Message(msgid, params) if params else msgid


class Message(str):
    """A message with values in it: the str is the English text (for logs, JSON and tests),
    `msgid` the catalog's key that the page translates before filling in `params`."""

    msgid: str
    params: Mapping[str, Any]

    def __new__(cls, msgid: str, params: Mapping[str, Any]) -> "Message":
        message = super().__new__(cls, msgid % params)
        message.msgid = msgid
        message.params = params
        return message


class Catalogs:
    """Every language's compiled catalog, read once at start-up (the .mo files the install built)."""

    def __init__(self, folder: Path) -> None:
        self.translations: dict[str, Translations] = {}
        for language in LANGUAGES:
            loaded = Translations.load(str(folder), [language], DOMAIN)
            if not isinstance(loaded, Translations):
                raise RuntimeError(
                    f"no compiled catalog for {language!r} under {folder}: "
                    "`pip install -e .` (or building the package) compiles them"
                )
            self.translations[language] = loaded


@functools.lru_cache(maxsize=1024)
def negotiate(accept_language: str) -> str:
    """The best of LANGUAGES for an Accept-Language value, by q-value; DEFAULT when none fits."""
    ranked = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and 0 < quality <= 1:
            ranked.append((-quality, position, tag.strip()))
    preferred = [tag for _, _, tag in sorted(ranked)]
    return negotiate_locale(preferred, LANGUAGES, sep="-", aliases=None) or DEFAULT


def language(request: web.Request) -> str:
    """The request's language: the switch's cookie, else Accept-Language. Worked out once per request."""
    found = request.get(language_key)
    if found is None:
        # Parsing the Cookie header costs more than the rest of this; most readers never switched.
        chosen = request.cookies.get(COOKIE) if COOKIE in request.headers.get("Cookie", "") else None
        if chosen in LANGUAGES:
            found = chosen
        else:  # cut, so that the cache's keys stay small whatever a client sends
            found = negotiate(request.headers.get("Accept-Language", "")[:MAX_HEADER])
        request[language_key] = found
    return found


def set_cookie(response: web.StreamResponse, chosen: str, secure: bool) -> None:
    """Remember the switch's choice in this browser for a year."""
    response.set_cookie(
        COOKIE, chosen, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax", httponly=True, secure=secure
    )


@functools.cache
def _locale(code: str) -> Locale:
    return Locale.parse(code)


@functools.cache
def _datetime_pattern(code: str) -> str:
    """The locale's medium date with its short time (no seconds): '1 déc. 2026, 15:04'."""
    locale = _locale(code)
    return locale.datetime_formats["medium"].format(
        locale.time_formats["short"].pattern, locale.date_formats["medium"].pattern
    )


@functools.cache
def _percent_pattern(code: str) -> Any:
    """The locale's percent pattern ('#,##0 %' in German) with one decimal, as the results show."""
    pattern = copy.copy(_locale(code).percent_formats[None])
    pattern.frac_prec = (1, 1)
    return pattern


def format_when(value: datetime | None, code: str) -> str:
    """A moment in UTC, so every reader sees the same time, written the language's way."""
    if value is None:
        return ""
    return format_datetime(value, _datetime_pattern(code), tzinfo=UTC, locale=_locale(code)) + " UTC"


def format_weekday(value: date, code: str) -> str:
    """A calendar day with its weekday, the language's way: 'Fri, Mar 1, 2030', 'Fr., 1. März 2030'."""
    return format_skeleton("yMMMEd", value, locale=_locale(code))


def format_clock(value: datetime, zone: tzinfo, code: str) -> str:
    """A moment's time of day in `zone`, the language's way: '10:00 AM', '10:00'."""
    return format_time(value, "short", tzinfo=zone, locale=_locale(code))


def format_zoned(value: datetime, zone: tzinfo, code: str) -> str:
    """A moment as a day and a time of day in `zone`, the language's way."""
    local = value.astimezone(zone)
    return f"{format_weekday(local.date(), code)}, {format_clock(value, zone, code)}"


def format_day(value: datetime | None, code: str) -> str:
    """The day of a moment in UTC, written the language's way: 'June 1, 2027', '1. Juni 2027'."""
    if value is None:
        return ""
    return format_date(value.astimezone(UTC).date(), "long", locale=_locale(code))


def format_percent(value: float, code: str) -> str:
    """`value` (0-100) as a percentage with one decimal: '57.1%', '57,1 %'."""
    return _percent_pattern(code).apply(value / 100, _locale(code))


def format_number(value: int, code: str) -> str:
    """A count with the language's grouping: '12,345', '12.345'."""
    return format_decimal(value, locale=_locale(code))


# An ordinal's pattern by its CLDR ordinal category in the language (babel's `ordinal_form`):
# "1st", "2nd", "3rd", "4th" in English; each catalog says its own ("1.", "1er", "2e").
ORDINALS = {
    "one": N_("%(number)sst"),
    "two": N_("%(number)snd"),
    "few": N_("%(number)srd"),
    "other": N_("%(number)sth"),
}


@jinja2.pass_context
def page_language(context: jinja2.runtime.Context) -> str:
    """The language of the page being rendered (`<html lang>`); views pass `request` to every page."""
    request = context.get("request")
    return DEFAULT if request is None else language(request)


def install(env: jinja2.Environment, catalogs: Catalogs) -> None:
    """Give templates the i18n extension's callables and the locale filters, bound to the request."""
    translations = catalogs.translations

    # jinja2's newstyle wrappers around these mark the text safe (it is the template's own)
    # and escape the values put into it.
    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str) -> str:
        return translations[page_language(context)].gettext(message)

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular: str, plural: str, num: int) -> str:
        return translations[page_language(context)].ngettext(singular, plural, num)

    @jinja2.pass_context
    def translate(context: jinja2.runtime.Context, message: str) -> str:
        """A message from Python (N_), in the reader's language; plain text, escaped on output."""
        catalog = translations[page_language(context)]
        if isinstance(message, Message):
            return catalog.gettext(message.msgid) % message.params
        return catalog.gettext(message)

    @jinja2.pass_context
    def ordinal(context: jinja2.runtime.Context, value: int) -> str:
        """A place in a ranking, in the reader's language: '2nd', '2.', '2e'."""
        code = page_language(context)
        form = _locale(code).ordinal_form(value)
        return translations[code].gettext(ORDINALS.get(form, ORDINALS["other"])) % {"number": value}

    def localized(format_value: Callable[[Any, str], str]) -> Callable[..., str]:
        @jinja2.pass_context
        def apply(context: jinja2.runtime.Context, value: Any) -> str:
            return format_value(value, page_language(context))

        return apply

    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # babel.cfg extracts with `trimmed` too
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["page_language"] = page_language
    env.globals["languages"] = NAMES
    env.filters.update(
        translate=translate,
        when=localized(format_when),
        day=localized(format_day),
        percent=localized(format_percent),
        number=localized(format_number),
        ordinal=ordinal,
    )
