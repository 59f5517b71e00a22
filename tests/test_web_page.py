"""The homeowner's page in a real headless Chromium (Playwright), during a relayed session.

Set ``UPDATE_SCREENSHOT=1`` to write the page's screenshots to ``docs/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ocpp.v16 import call as call16

from tests.browser import needs_chromium
from tests.conftest import ConnectCharger, StartProxy, service

DOCS = Path(__file__).resolve().parent.parent / "docs"

pytestmark = needs_chromium


async def test_page_shows_a_live_session_and_its_override_refuses_a_backend(
    browser: Any, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    from playwright.async_api import expect

    a = await start_csms("a", first_transaction_id=100)
    proxy = await start_proxy(
        ocpp_services=[service(a, rate_per_kwh=0.30, currency="EUR")],
        api_public_read=False,
        home_rate_per_kwh=0.25,
    )
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Available")
    await a.wait_connected("CP_1")
    # A finished session for the energy chart, then a running one.
    done = await charger.start_transaction(1, "TAG1", 10000)
    await charger.meter_values(1, done, 14000, 7400)
    await charger.stop_transaction(done, 18200)
    running = await charger.start_transaction(1, "TAG1", 20000)
    await charger.status(1, "Charging")
    await charger.meter_values(1, running, 20500, 3600)

    page = await browser.new_page(viewport={"width": 1100, "height": 1400})
    # The token is passed once in the URL; the page keeps it and drops it from the address.
    await page.goto(f"http://127.0.0.1:{proxy.port}/?token={proxy.api_token}")
    await expect(page.get_by_test_id("link")).to_have_text("live", timeout=10000)
    assert "token=" not in page.url
    power = page.get_by_test_id("power-CP_1-1")
    energy = page.get_by_test_id("energy-CP_1-1")
    await expect(power).to_have_text("3.60 kW", timeout=10000)
    await expect(energy).to_have_text("0.500 kWh")
    await expect(page.get_by_test_id("state-CP_1-1")).to_have_text("Charging")
    await expect(page.get_by_test_id("owner-CP_1-1")).to_have_text("a")
    await expect(page.get_by_test_id("backend-CP_1-a")).to_contain_text("connected")

    # New meter values show up without a reload.
    await charger.meter_values(1, running, 21500, 7400)
    await expect(power).to_have_text("7.40 kW", timeout=10000)
    await expect(energy).to_have_text("1.500 kWh")

    # The charts have content: the power line of the session, a bar of the finished one.
    line = page.locator("#power-chart svg path[data-testid=power-line]")
    await expect(line).to_have_count(1)
    assert len(await line.get_attribute("d") or "") > 10
    await expect(page.locator('#energy-chart svg rect[data-owner="a"]')).to_have_count(1)
    await expect(page.locator("#energy-legend")).to_contain_text("a")
    await expect(page.get_by_test_id("sessions-table").locator("tbody tr")).to_have_count(2)

    if os.environ.get("UPDATE_SCREENSHOT"):
        await page.set_viewport_size({"width": 1100, "height": 900})
        await page.screenshot(path=str(DOCS / "screenshot.png"), full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.screenshot(path=str(DOCS / "screenshot-phone.png"), full_page=True)
        await page.set_viewport_size({"width": 1100, "height": 1400})

    # The override switch: on in the page, then a backend's remote start is refused.
    override = page.get_by_test_id("override-switch")
    await expect(override).not_to_be_checked()
    await page.locator("label.switch", has=override).click()
    await expect(page.locator("#feedback")).to_contain_text("Override on")
    await expect(override).to_be_checked()
    assert proxy.registry.home.override_api is True
    await charger.stop_transaction(running, 21500)
    await charger.status(1, "Available")
    start = call16.RemoteStartTransaction(id_tag="APP", connector_id=1)
    assert (await a.call("CP_1", start)).status == "Rejected"
    assert not any(action == "RemoteStartTransaction" for action, _ in charger.received)

    # A command to a charger that went away: the page says so.
    await charger.close()
    await expect(page.get_by_test_id("charger-CP_1")).to_contain_text("offline", timeout=10000)
    await page.get_by_test_id("connector-CP_1-1").get_by_role("button", name="Start").click()
    await expect(page.locator("#feedback")).to_contain_text("offline")


async def test_page_asks_for_the_token_on_the_direct_port_and_keeps_it(
    browser: Any, start_proxy: StartProxy
) -> None:
    from playwright.async_api import expect

    proxy = await start_proxy(api_public_read=False)
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{proxy.port}/")
    form = page.locator("#token-form")
    await expect(form).to_be_visible(timeout=10000)
    await expect(page.get_by_test_id("link")).not_to_have_text("live")
    await page.locator("#token-input").fill(proxy.api_token)
    await form.get_by_role("button", name="Save").click()
    await expect(page.get_by_test_id("link")).to_have_text("live", timeout=10000)
    await expect(form).to_be_hidden()
    await expect(page.locator("#chargers")).to_contain_text("No charger yet")
    # A reload needs no token again: the page kept it.
    await page.reload()
    await expect(page.get_by_test_id("link")).to_have_text("live", timeout=10000)
    await expect(form).to_be_hidden()
    # The token is never shown on the direct port.
    await expect(page.locator("#api-token")).to_be_hidden()


async def test_page_through_ingress_shows_copies_and_regenerates_the_token(
    browser: Any, start_proxy: StartProxy, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    # 127.0.0.1 stands in for the Supervisor's ingress proxy on the ingress listener.
    proxy = await start_proxy(api_public_read=False, ingress_peer="127.0.0.1")
    context = await browser.new_context()
    await context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=f"http://127.0.0.1:{proxy.ingress_port}"
    )
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{proxy.ingress_port}/")
    # Ingress needs no token: the page is live at once, and shows the token to copy.
    await expect(page.get_by_test_id("link")).to_have_text("live", timeout=10000)
    await expect(page.locator("#token-form")).to_be_hidden()
    card = page.locator("#api-token")
    await expect(card).to_be_visible(timeout=10000)
    value = page.get_by_test_id("api-token-value")
    await expect(value).to_have_value(proxy.api_token)
    await expect(value).to_have_attribute("type", "password")
    await card.get_by_role("button", name="Show").click()
    await expect(value).to_have_attribute("type", "text")
    await expect(card).to_contain_text(str(tmp_path / "data" / "api_token"))
    await card.get_by_role("button", name="Copy").click()
    await expect(page.locator("#feedback")).to_have_text("API token copied")
    assert await page.evaluate("navigator.clipboard.readText()") == proxy.api_token

    old = proxy.api_token
    page.once("dialog", lambda dialog: dialog.accept())
    await card.get_by_role("button", name="Regenerate").click()
    await expect(page.locator("#feedback")).to_contain_text("New API token made")
    assert proxy.api_token != old
    await expect(value).to_have_value(proxy.api_token)
    await context.close()


async def test_a_charger_updated_from_16_to_201_shows_its_connectors_once(
    browser: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    from playwright.async_api import expect

    proxy = await start_proxy()
    old = await connect_charger(proxy)
    await old.boot()
    await old.status(1, "Available")
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{proxy.port}/")
    connectors = page.locator('[data-testid^="connector-CP_1-"]')
    await expect(page.get_by_test_id("state-CP_1-1")).to_have_text("Available", timeout=10000)
    await expect(connectors).to_have_count(1)

    # A firmware update: the same charger comes back speaking OCPP 2.0.1.
    await old.close()
    new = await connect_charger(proxy, version="2.0.1")
    await new.boot()
    await new.status(1, "Occupied")
    card = page.get_by_test_id("charger-CP_1")
    await expect(card).to_contain_text("OCPP 2.0.1", timeout=10000)
    await expect(page.get_by_test_id("state-CP_1-1")).to_have_text("Occupied")
    await expect(connectors).to_have_count(1)
    (charger,) = (await proxy.get_json("/status"))["chargers"]
    assert [(c["evse_id"], c["connector_id"]) for c in charger["connectors"]] == [(1, 1)]


async def test_power_reported_per_phase_shows_on_the_page(
    browser: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    from playwright.async_api import expect

    proxy = await start_proxy()
    charger = await connect_charger(proxy)
    charger.phases = 3  # Power.Active.Import on L1, L2, L3 only
    await charger.boot()
    await charger.status(1, "Charging")
    running = await charger.start_transaction(1, "TAG1", 20000)
    await charger.meter_values(1, running, 20500, 6900)
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{proxy.port}/")
    await expect(page.get_by_test_id("power-CP_1-1")).to_have_text("6.90 kW", timeout=10000)
    await expect(page.get_by_test_id("energy-CP_1-1")).to_have_text("0.500 kWh")


async def test_page_shows_webhooks_with_their_drops_to_an_admin_only(
    browser: Any, start_proxy: StartProxy
) -> None:
    from playwright.async_api import expect

    from ocpp_proxy.event_bus import LIMIT_CHANGED
    from ocpp_proxy.server.keys import EVENT_BUS, WEBHOOKS
    from tests.webhook_receiver import free_port

    reader = "a-read-only-token-0123"
    proxy = await start_proxy(
        api_public_read=False,
        api_tokens=[{"name": "kiosk", "token": reader, "role": "read"}],
        webhooks=[
            {
                "id": "crm",
                "url": f"http://127.0.0.1:{free_port()}/hook",  # nobody listens
                "secret": "webhook-secret-0123456789",
                "max_queue": 1,
            }
        ],
    )
    dispatcher = proxy.app[WEBHOOKS]
    for amperes in (6.0, 8.0, 10.0):
        proxy.app[EVENT_BUS].publish(LIMIT_CHANGED, None, max_current_a=amperes)
    await dispatcher.changes.wait_for(lambda: dispatcher.enqueued >= 3, 5)

    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{proxy.port}/?token={proxy.api_token}")
    table = page.get_by_test_id("webhooks-table")
    await expect(table).to_be_visible(timeout=10000)
    row = table.locator("tbody tr").first
    await expect(row).to_contain_text("crm")
    await expect(row.locator("td").nth(5)).to_have_text("2")  # dropped: its queue holds one
    await expect(row.locator("td").nth(2)).to_have_text("all")

    # A read-only token sees the page but not the webhooks (and is not asked for a token).
    other = await browser.new_page()
    await other.goto(f"http://127.0.0.1:{proxy.port}/?token={reader}")
    await expect(other.get_by_test_id("link")).to_have_text("live", timeout=10000)
    await expect(other.locator("#webhooks-card")).to_be_hidden()
    await expect(other.locator("#token-form")).to_be_hidden()


async def test_page_lists_adds_and_removes_home_cards(
    browser: Any, start_proxy: StartProxy
) -> None:
    from playwright.async_api import expect

    proxy = await start_proxy(
        api_public_read=False,
        home_cards=[{"id": "CONFIGCARD01", "name": "Anna"}],
    )
    page = await browser.new_page(viewport={"width": 1100, "height": 1400})
    await page.goto(f"http://127.0.0.1:{proxy.port}/?token={proxy.api_token}")
    table = page.get_by_test_id("cards-table")
    await expect(table).to_contain_text("CO********01", timeout=10000)
    await expect(table).to_contain_text("Anna")
    assert "CONFIGCARD01" not in await table.inner_text()  # shown masked

    await page.fill("#card-id", "04A1B2C3D4E5")
    await page.fill("#card-name", "Ben")
    await page.click("#card-form button[type=submit]")
    await expect(table).to_contain_text("04********E5")
    assert [c.id_tag for c in proxy.registry.cards.home_cards()] == [
        "CONFIGCARD01",
        "04A1B2C3D4E5",
    ]
    await page.click("button[data-card='04A1B2C3D4E5']")
    await expect(table).not_to_contain_text("04********E5")
    assert await page.locator("button[data-card='CONFIGCARD01']").count() == 0  # config: kept
    await page.close()
