"""Real-browser fixtures: the app on a real 127.0.0.1 port, driven by Debian's chromium.

Playwright for Python drives the system's chromium (never a browser of its own: nothing is
downloaded at run time). The browser starts once for these tests; each test gets the app
served fresh from a thread on a free port (so no in-process cache outlives a test's data)
and new browser contexts.

Every page a test opens is watched: a console error, an uncaught script error or a
Content-Security-Policy violation fails the test, except "Failed to load resource" for a
URL the test said answers 4xx on purpose (`BrowserTab.expect_error_status`).
Screenshots go to `screenshots/` (printed at the end of the run).
"""

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app

CHROMIUM = os.environ.get("POLLS_CHROMIUM", "/usr/bin/chromium")
# What this machine's chromium needs (see the env notes): no sandbox as root, no GPU, and no
# background connections to the outside world, which is closed here.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = settings.PROJECT_ROOT / "screenshots"
PHONE = {"width": 375, "height": 740}
_FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")
_tabs_key = pytest.StashKey[list["BrowserTab"]]()
_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${where}`);
});
"""


class LiveServer:
    """The app served by aiohttp on a free 127.0.0.1 port from a thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="live-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.url = ""

    def start(self) -> "LiveServer":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the app did not start within 30 s")
        if self._failure is not None:
            raise RuntimeError("the app failed to start") from self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _serve(self) -> None:
        self._loop = loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._app, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            await runner.cleanup()
            raise
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


@dataclass
class BrowserTab:
    """One page and what its console said; problems fail the test (see the module doc)."""

    page: Page
    name: str
    problems: list[str] = field(default_factory=list)
    # (URL, status) pairs, not a dict: one URL may answer 400 and later 405 on purpose, and
    # the first message may arrive after the second is expected.
    expected_statuses: set[tuple[str, int]] = field(default_factory=set)

    def expect_error_status(self, url: str, status: int) -> None:
        """`url` answers `status` on purpose: its "Failed to load resource" is not a problem."""
        self.expected_statuses.add((url, status))

    def watch(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught script error: {error}"))
        # Also record CSP violations in the page itself, so none is missed when a test ends
        # before its console message arrives.
        self.page.add_init_script(_RECORD_CSP_VIOLATIONS)

    def collect(self) -> list[str]:
        """Every problem seen so far, including CSP violations the page recorded itself."""
        if not self.page.is_closed():
            try:
                seen = self.page.evaluate("() => window.__cspViolations || []")
            except PlaywrightError:  # JavaScript off, or the page is navigating: console has them
                seen = []
            for violation in seen:
                problem = f"CSP violation: {violation}"
                if problem not in self.problems:
                    self.problems.append(problem)
        return self.problems

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = _FAILED_LOAD.match(message.text)
        url = message.location.get("url", "")
        if failed and (url.split("#")[0], int(failed.group(1))) in self.expected_statuses:
            return
        # CSP violations ("Refused to ... because it violates the following Content Security
        # Policy directive") arrive here too, as console errors.
        self.problems.append(f"console error at {url or '?'}: {message.text}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:120]


def save_screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    """Save a PNG of `page` as screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{_safe(name)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's chromium, started once for all browser tests."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.fail(
            f"chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(.ci/run does this), or point POLLS_CHROMIUM at a chromium binary",
            pytrace=False,
        )
    # Playwright gives every launch a fresh, empty profile directory of its own.
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture
def live_server(config: dict[str, Any], sync_engine: Any) -> Iterator[str]:
    """The app on a real port, on the test database (emptied for this test): its base URL."""
    server = LiveServer(init_app(config=config)).start()
    yield server.url
    server.stop()


@pytest.fixture
def open_tab(
    browser: Browser, live_server: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserTab]]:
    """Open a watched page in a new browser context; keyword arguments go to the context."""
    contexts: list[BrowserContext] = []
    tabs = request.node.stash.setdefault(_tabs_key, [])

    def open_(**context_options: Any) -> BrowserTab:
        context = browser.new_context(base_url=live_server, **context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        tab = BrowserTab(context.new_page(), name=f"{request.node.name}-{len(tabs) + 1}")
        tab.watch()
        tabs.append(tab)
        return tab

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def tab(open_tab: Callable[..., BrowserTab]) -> BrowserTab:
    """A watched page, JavaScript on, CSP enforced, desktop size."""
    return open_tab(viewport={"width": 1024, "height": 768})


@pytest.fixture
def axe_tab(open_tab: Callable[..., BrowserTab]) -> BrowserTab:
    """A page that can run axe-core: the only context with the CSP bypassed (to inject axe)."""
    if not AXE.exists():
        pytest.fail(
            f"{AXE} is missing: run `npm ci --prefix tests/browser` (tests/run does this)", pytrace=False
        )
    return open_tab(bypass_csp=True, viewport={"width": 1024, "height": 768})


# color-contrast is named so that it runs even if axe's defaults change: the light and dark
# schemes are both checked with it (`page.emulate_media(color_scheme=...)` picks one).
_RUN_AXE = """async () => await axe.run(document, {
  resultTypes: ['violations'],
  rules: {'color-contrast': {enabled: true}},
})"""


def serious_accessibility_violations(page: Page) -> list[str]:
    """Run axe-core on the current page; the serious and critical violations, described."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(_RUN_AXE)
    found = [
        f"{violation['impact']}: {violation['id']} ({violation['help']}) at "
        + ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    checked = {rule["id"] for kind in ("passes", "violations", "incomplete") for rule in result[kind]}
    if "color-contrast" not in checked:
        found.append("color-contrast did not run: no text's contrast was checked")
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail the test itself (not its teardown) when a page logged a problem; screenshot failures."""
    tabs = item.stash.get(_tabs_key, [])
    try:
        result = yield
        problems = [problem for tab in tabs for problem in tab.collect()]
        if problems:
            pytest.fail("the browser reported problems:\n  " + "\n  ".join(problems), pytrace=False)
    except BaseException:
        for tab in tabs:
            if not tab.page.is_closed():
                path = save_screenshot(tab.page, f"FAILED-{tab.name}")
                item.add_report_section("call", "screenshot", str(path))
        raise
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_sep("-", f"browser screenshots in {SCREENSHOTS}")
