"""The real headless Chromium the page tests drive (Playwright, Debian's /usr/bin/chromium).

Import :data:`needs_chromium` as a module's ``pytestmark`` and the :func:`browser` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium dials Google's hosts, which this network
#: refuses; the sandbox needs a non-root user.
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} for the browser test"
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A launched headless Chromium, closed after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()
