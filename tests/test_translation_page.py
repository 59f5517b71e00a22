"""The homeowner's page shows which backends speak another OCPP version (real headless Chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ConnectCharger, StartProxy, service

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} for the browser test"
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def test_page_names_a_translated_backend_and_its_version(
    browser: Any, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    from playwright.async_api import expect

    one6 = await start_csms("one6")
    two = await start_csms("two", "2.0.1")
    proxy = await start_proxy(ocpp_services=[service(one6), service(two)], api_public_read=False)
    charger = await connect_charger(proxy)
    await charger.boot()
    await two.wait_for_call("BootNotification")
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{proxy.port}/?token={proxy.api_token}")
    translated = page.get_by_test_id("backend-CP_1-two")
    await expect(translated).to_contain_text("OCPP 2.0.1, translated", timeout=10000)
    await expect(translated).to_contain_text("connected")
    await expect(page.get_by_test_id("backend-CP_1-one6")).not_to_contain_text("translated")
