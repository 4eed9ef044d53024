"""The app's routes as tests walk them, those of nested applications (the API) included."""

from collections.abc import Iterator

from aiohttp import web


def resources(app: web.Application) -> Iterator[web.AbstractResource]:
    """Every resource of `app` and of the applications nested in it, in the router's order."""
    for resource in app.router.resources():
        nested = resource.get_info().get("app")
        if nested is None:
            yield resource
        else:
            yield from resources(nested)
