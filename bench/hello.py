"""The bare aiohttp app the benchmark compares against: one handler answering "Hello".

Run by bench/run.py as `python bench/hello.py PORT [--uvloop]`, on the same
event loop as the app under test so the ratio compares like with like.
"""

import sys

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


def main() -> None:
    port = int(sys.argv[1])
    loop_factory = None
    if "--uvloop" in sys.argv[2:]:
        import uvloop

        loop_factory = uvloop.new_event_loop
    app = web.Application()
    # Any path: the page scenarios' random /poll/{id} URLs get the same "Hello".
    app.router.add_get("/{tail:.*}", hello)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        backlog=1024,  # as the app's
        loop=None if loop_factory is None else loop_factory(),
    )


if __name__ == "__main__":
    main()
