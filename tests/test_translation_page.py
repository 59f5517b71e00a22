"""The homeowner's page shows which backends speak another OCPP version (real headless Chromium)."""

from __future__ import annotations

from typing import Any

from tests.browser import needs_chromium
from tests.conftest import ConnectCharger, StartProxy, service

pytestmark = needs_chromium


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
