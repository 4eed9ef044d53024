"""A response's one `Vary` header: what each step adds to it is merged there, each name once, so
caches read a single list (some read only the first of several `Vary` headers).
"""

import functools

from aiohttp import hdrs
from multidict import MutableMultiMapping

# What every HTML page depends on: gzip or not (compression.py), the language (Accept-Language
# or the switch's cookie, i18n.py) and the voter's cookie (voting.py).
PAGE = (hdrs.ACCEPT_ENCODING, hdrs.ACCEPT_LANGUAGE, hdrs.COOKIE)
PAGE_VALUE = ", ".join(PAGE)


def add(headers: MutableMultiMapping[str], *names: str) -> None:
    """Say the response also depends on the request headers `names`."""
    headers[hdrs.VARY] = _merged(tuple(headers.getall(hdrs.VARY, ())), names)


@functools.lru_cache(maxsize=64)  # a handful of combinations, on nearly every page served
def _merged(values: tuple[str, ...], names: tuple[str, ...]) -> str:
    """The names in `values` (whole Vary headers) and `names`, in order, each once whatever its case."""
    merged: dict[str, str] = {}
    for value in (*values, *names):
        for part in value.split(","):
            name = part.strip()
            if name:
                merged.setdefault(name.lower(), name)
    # `*`: the response depends on more than request headers, so listing them says nothing more.
    return "*" if "*" in merged else ", ".join(merged.values())
