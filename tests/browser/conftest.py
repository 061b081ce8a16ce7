"""The console as a process in front of the e2e platform, driven by Debian's headless Chromium through Playwright.

Nothing here downloads a browser: Playwright launches /usr/bin/chromium. Without it the tests skip, saying so.
CONSOLE_SCREENSHOTS=docs/screenshots keeps a PNG of each page (the README shows them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from devstack import procs
from devstack.platform import Platform, ServiceProcess, console_process
from tests.e2e.conftest import platform  # noqa: F401 - the services as processes, shared with the e2e suite
from tests.support import auth

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_BUDGET = 200_000  # bytes of HTML, CSS and scripts a page may weigh before data


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(reason="no /usr/bin/chromium: `apt-get install -y chromium` (.ci/run does)")
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def console(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:  # noqa: F811
    process = console_process(
        platform, procs.free_port(), Path(tmp_path_factory.mktemp("console")), auth.issuer().folder
    )
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser(console: ServiceProcess) -> Iterator[Browser]:
    """After the platform: Playwright's sync API holds an event loop while it runs, so asyncio.run() fails then."""
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def admin(platform: Platform) -> Iterator[dict[str, httpx.Client]]:  # noqa: F811
    headers = auth.bearer("admin", name="browser-admin")
    made = {name: httpx.Client(base_url=platform.url(name), headers=headers, timeout=30) for name in platform.processes}
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


def eventually(check: Callable[[], object], what: str, timeout: float = 45) -> object:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def screenshot(page: Page, name: str) -> None:
    """Keep the page as a PNG when asked to (CONSOLE_SCREENSHOTS), and hold every page to its weight budget."""
    weight = len(page.content().encode())
    assert weight < PAGE_BUDGET, f"{name}: {weight} bytes"
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
