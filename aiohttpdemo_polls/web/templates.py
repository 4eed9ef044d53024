"""The pages' templates (Jinja2, one environment for every language) and their static assets."""

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import settings
from . import i18n, links
from .config import config_key

TEMPLATES = settings.ASSETS / "templates"
TRANSLATIONS = settings.ASSETS / "translations"
STATIC = settings.ASSETS / "static"


def setup(app: web.Application) -> None:
    debug = app[config_key]["debug"]
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters={"absolute": links.absolute_filter},
        # Checking each template file's mtime on every render costs a stat() per page;
        # only a developer editing templates (debug) wants that.
        auto_reload=debug,
        bytecode_cache=_bytecode_cache(),
    )
    # The page's language comes from its request (i18n.py).
    i18n.install(env, i18n.Catalogs(TRANSLATIONS))
    # Every template ready before the first request: compiling one on first use held the
    # event loop for up to 70 ms (the ranked count's tables), longer than a page may.
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    app[aiohttp_jinja2.static_root_key] = "/static"
    if debug:
        # In production nginx serves these; the URLs stay the same.
        app.router.add_static("/static/", STATIC, name="static")


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept on disk (a per-user folder in the temporary directory), checked
    against their source: the next process loads them instead of compiling again. None where
    no such folder can be made (a read-only temporary directory): then each process compiles."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except RuntimeError:  # Jinja's "cannot create or use the cache folder"
        return None
