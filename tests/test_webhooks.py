"""Webhooks end to end: the proxy POSTs to a real local aiohttp receiver.

The receiver checks each signature as a receiver would; it is down, slow or answers 500 for a
while, and nothing is lost: deliveries are retried with exponential backoff on the injected
clock, kept in SQLite across a restart, and bounded per webhook with a visible drop count.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ocpp.v16 import call as call16

from ocpp_proxy.event_bus import LIMIT_CHANGED, publish_messages_at_risk
from ocpp_proxy.server.keys import EVENT_BUS, WEBHOOKS
from tests.clocks import SteppedClock
from tests.conftest import ConnectCharger, Proxy, StartProxy, service
from tests.webhook_receiver import Receiver, free_port, signature_ok

TOKEN = "admin-token-0123456789"
SECRET = "webhook-secret-0123456789"


def hook(url: str, **extra: Any) -> dict[str, Any]:
    return {"id": "home", "url": url, "secret": SECRET, **extra}


async def api(proxy: Proxy, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await proxy.call(method, path, body, TOKEN)


async def webhook_status(proxy: Proxy, webhook_id: str = "home") -> dict[str, Any]:
    status, body = await api(proxy, "GET", "/api/v1/webhooks")
    assert status == 200
    return next(w for w in body["webhooks"] if w["id"] == webhook_id)


async def enqueued(proxy: Proxy, count: int) -> None:
    dispatcher = proxy.app[WEBHOOKS]
    await dispatcher.changes.wait_for(lambda: dispatcher.enqueued >= count, 5)


async def attempted(proxy: Proxy, count: int) -> None:
    """Wait until the proxy has recorded ``count`` delivery attempts."""
    dispatcher = proxy.app[WEBHOOKS]
    await dispatcher.changes.wait_for(lambda: dispatcher.attempts >= count, 5)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_session_reaches_the_receiver_as_signed_events(
    start_proxy: StartProxy, connect_charger: ConnectCharger, start_csms: Any, version: str
) -> None:
    receiver = await Receiver().start()
    csms = await start_csms("cpo", version)
    proxy = await start_proxy(
        api_token=TOKEN,
        ocpp_services=[service(csms, rate_per_kwh=0.5, currency="EUR")],
        webhooks=[hook(receiver.url)],
    )
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    await charger.status(1, "Available")
    tx = await charger.start_transaction(1, "CARD-1", meter_start_wh=1000)
    await charger.stop_transaction(tx, meter_stop_wh=8500, reason="EVDisconnected")
    await charger.status(1, "Faulted")
    await charger.status(1, "Available")
    await charger.close()

    names = (
        "charger.connected",
        "session.started",
        "session.stopped",
        "connector.faulted",
        "connector.recovered",
        "charger.disconnected",
    )

    def got() -> list[str]:
        return [b["event"] for b in receiver.accepted if b["event"] in names]

    await receiver.wait_until(lambda: len(got()) == len(names))
    assert got() == list(names)
    bodies = {b["event"]: b for b in receiver.accepted}
    stopped = bodies["session.stopped"]
    assert stopped["version"] == 1 and stopped["charge_point_id"] == "CP_1"
    assert stopped["at"].endswith("Z")
    data = stopped["data"]
    assert data["transaction_id"] == str(tx) and data["owner"] == "cpo"
    assert data["energy_kwh"] == 7.5 and data["revenue"] == 3.75 and data["currency"] == "EUR"
    assert data["stop_reason"] == "EVDisconnected" and data["duration_s"] >= 0
    assert bodies["session.started"]["data"]["owner"] == "cpo"
    faulted = bodies["connector.faulted"]["data"]
    assert (faulted["evse_id"] or faulted["connector_id"]) == 1
    assert len({b["id"] for b in receiver.accepted}) == len(receiver.accepted)
    for received in receiver.received:
        assert signature_ok(SECRET, received, now=receiver_now())
        assert received.headers["X-OCPP-Proxy-Event-Id"] == received.json["id"]
    tampered = receiver.received[0]
    forged = type(tampered)(tampered.headers, tampered.body.replace(b"CP_1", b"CP_2"), 200)
    assert not signature_ok(SECRET, forged, now=receiver_now())
    assert not signature_ok("another-secret-0123456", tampered, now=receiver_now())
    await receiver.stop()


def receiver_now() -> float:
    return time.time()


async def test_down_then_failing_receiver_gets_every_event_once_accepted_in_order(
    start_proxy: StartProxy,
) -> None:
    clock = SteppedClock()
    port = free_port()
    proxy = await start_proxy(
        api_token=TOKEN, webhooks=[hook(f"http://127.0.0.1:{port}/hook")], clock=clock
    )
    bus = proxy.app[EVENT_BUS]
    first = bus.publish(LIMIT_CHANGED, None, max_current_a=16.0)
    second = bus.publish(LIMIT_CHANGED, None, max_current_a=10.0)
    await enqueued(proxy, 2)
    # Nobody listens: the first attempt fails, the next waits 1 s.
    assert await clock.wait_for_sleeper() == 1.0
    shown = await webhook_status(proxy)
    assert shown["queued"] == 2 and shown["delivered"] == 0 and shown["last_error"]

    receiver = Receiver()
    receiver.port = port
    await receiver.start()
    receiver.answers.extend([500, 503])
    waits = []
    for attempt in (1, 2):
        clock.advance(await clock.wait_for_sleeper())
        await receiver.wait_until(lambda n=attempt: len(receiver.received) == n)
        waits.append(await clock.wait_for_sleeper())
    assert waits == [2.0, 4.0]  # exponential backoff after each failure
    assert (await webhook_status(proxy))["last_error"] == "HTTP 503"
    clock.advance(4.0)
    await receiver.wait_until(lambda: len(receiver.accepted) == 2)
    await attempted(proxy, 5)

    assert [b["id"] for b in receiver.accepted] == [first.id, second.id]
    # Every attempt at the first event carried its id: a receiver can drop duplicates.
    assert {r.headers["X-OCPP-Proxy-Event-Id"] for r in receiver.received[:3]} == {first.id}
    assert all(signature_ok(SECRET, r, now=clock.now) for r in receiver.received)
    shown = await webhook_status(proxy)
    assert (shown["queued"], shown["delivered"], shown["dropped"]) == (0, 2, 0)
    assert shown["last_error"] is None
    await receiver.stop()


async def test_a_slow_receiver_times_out_and_the_event_is_sent_again(
    start_proxy: StartProxy,
) -> None:
    clock = SteppedClock()
    receiver = await Receiver().start()
    receiver.hold = hold = asyncio.Event()
    proxy = await start_proxy(
        api_token=TOKEN, webhooks=[hook(receiver.url, timeout=0.3)], clock=clock
    )
    event = proxy.app[EVENT_BUS].publish(LIMIT_CHANGED, None, max_current_a=6.0)
    assert await clock.wait_for_sleeper() == 1.0
    assert (await webhook_status(proxy))["last_error"] == "no answer within 0.3 s"
    receiver.hold = None
    hold.set()
    clock.advance(1.0)
    await attempted(proxy, 2)
    shown = await webhook_status(proxy)
    assert (shown["queued"], shown["delivered"]) == (0, 1)
    assert {body["id"] for body in receiver.accepted} == {event.id}
    await receiver.stop()


async def test_queued_deliveries_survive_a_restart(start_proxy: StartProxy) -> None:
    clock = SteppedClock()
    port = free_port()
    options = {"api_token": TOKEN, "webhooks": [hook(f"http://127.0.0.1:{port}/hook")]}
    proxy = await start_proxy(**options, clock=clock)
    event = proxy.app[EVENT_BUS].publish(LIMIT_CHANGED, None, max_current_a=32.0)
    await clock.wait_for_sleeper()  # the receiver is down: it stays queued
    await proxy.stop()

    receiver = Receiver()
    receiver.port = port
    await receiver.start()
    await start_proxy(**options, clock=SteppedClock(clock.now + 60))
    await receiver.wait_until(lambda: receiver.accepted)
    assert [b["id"] for b in receiver.accepted] == [event.id]
    assert signature_ok(SECRET, receiver.received[0], now=clock.now + 60)
    await receiver.stop()


async def test_a_full_queue_drops_the_oldest_and_shows_the_count(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    clock = SteppedClock()
    port = free_port()
    proxy = await start_proxy(
        api_token=TOKEN,
        webhooks=[hook(f"http://127.0.0.1:{port}/hook", max_queue=2)],
        clock=clock,
    )
    bus = proxy.app[EVENT_BUS]
    events = [bus.publish(LIMIT_CHANGED, None, max_current_a=float(a)) for a in range(6, 11)]
    await enqueued(proxy, 5)
    shown = await webhook_status(proxy)
    assert (shown["queued"], shown["dropped"]) == (2, 3)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{proxy.port}/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        metrics = await response.text()
    assert 'ocpp_proxy_webhook_dropped_total{webhook="home"} 3' in metrics

    receiver = Receiver()
    receiver.port = port
    await receiver.start()
    clock.advance(await clock.wait_for_sleeper())
    await receiver.wait_until(lambda: len(receiver.accepted) == 2)
    await attempted(proxy, 3)  # one refused while the receiver was down, two accepted
    assert [b["id"] for b in receiver.accepted] == [e.id for e in events[-2:]]
    # The queue lives in SQLite: nothing of it is left once delivered.
    with sqlite3.connect(tmp_path / "data" / "ocpp-proxy.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM webhook_queue").fetchone() == (0,)
    await receiver.stop()


async def test_webhooks_are_managed_through_the_api(start_proxy: StartProxy) -> None:
    receiver = await Receiver().start()
    proxy = await start_proxy(
        api_token=TOKEN, webhooks=[hook(receiver.url, events=["session.started"])]
    )
    status, made = await api(
        proxy, "POST", "/api/v1/webhooks", {"id": "crm", "url": receiver.url, "events": []}
    )
    assert status == 201 and len(made["secret"]) >= 16  # generated, shown this once
    status, listing = await api(proxy, "GET", "/api/v1/webhooks")
    assert [w["id"] for w in listing["webhooks"]] == ["crm", "home"]
    assert all("secret" not in w for w in listing["webhooks"])
    assert {w["id"]: w["source"] for w in listing["webhooks"]} == {"crm": "api", "home": "config"}

    status, sent = await api(proxy, "POST", "/api/v1/webhooks/crm/test")
    assert status == 202
    await receiver.wait_until(lambda: receiver.accepted)
    await attempted(proxy, 1)
    assert receiver.accepted[0]["id"] == sent["event_id"]
    assert signature_ok(made["secret"], receiver.received[0], now=receiver_now())

    # Subscriptions filter: "home" wants session.started only, "crm" everything.
    publish_messages_at_risk(
        proxy.app[EVENT_BUS], "CP_1", backend_id="cpo", queued=19000, reason="queue nearly full"
    )
    await receiver.wait_until(lambda: len(receiver.accepted) == 2)
    at_risk = receiver.accepted[1]
    assert at_risk["event"] == "messages.at_risk" and at_risk["data"]["queued"] == 19000
    assert (await webhook_status(proxy, "home"))["delivered"] == 0

    assert (await api(proxy, "POST", "/api/v1/webhooks", {"id": "crm", "url": receiver.url}))[
        0
    ] == 409
    status, body = await api(
        proxy, "POST", "/api/v1/webhooks", {"id": "x", "url": "ftp://nope", "events": []}
    )
    assert (status, body["field"]) == (400, "url")
    status, body = await api(
        proxy, "POST", "/api/v1/webhooks", {"id": "x", "url": receiver.url, "events": ["nope"]}
    )
    assert (status, body["field"]) == (400, "events")
    assert (await api(proxy, "DELETE", "/api/v1/webhooks/home"))[0] == 409
    assert (await api(proxy, "DELETE", "/api/v1/webhooks/crm"))[0] == 200
    assert (await api(proxy, "DELETE", "/api/v1/webhooks/crm"))[0] == 404
    await receiver.stop()


async def test_backend_down_only_after_the_grace_period_then_up(
    start_proxy: StartProxy, connect_charger: ConnectCharger, start_csms: Any
) -> None:
    clock = SteppedClock()
    receiver = await Receiver().start()
    csms = await start_csms("cpo")
    proxy = await start_proxy(
        api_token=TOKEN,
        ocpp_services=[service(csms)],
        webhooks=[hook(receiver.url, events=["backend.down", "backend.up", "limit.changed"])],
        backend_down_grace=30,
        clock=clock,
    )
    charger = await connect_charger(proxy)
    await charger.boot()
    await csms.wait_connected("CP_1")
    link = proxy.hub().links["cpo"]

    async def link_is(up: bool) -> None:
        await proxy.registry.changes.wait_for(lambda: link.connected == up, 10)

    async def back_up() -> float:
        """Start the CSMS again and move the clock past the link's reconnect wait (s)."""
        await csms.start()
        while not (waits := [s for s in clock.sleeping if s < 30.0]):
            await clock.wait_for_sleepers(len(clock.sleeping) + 1)  # the link's next wait
        clock.advance(min(waits))
        await link_is(True)
        return min(waits)

    # A blip shorter than the grace period is not news.
    await csms.stop()
    await link_is(False)
    # Two waits start, in either order: the link's reconnect wait and the grace period.
    assert max(await clock.wait_for_sleepers(2)) == 30.0
    await back_up()
    status, _ = await api(proxy, "POST", "/api/v1/max_current", {"max_current_a": 16})
    assert status == 200
    await receiver.wait_until(lambda: receiver.accepted)
    assert [b["event"] for b in receiver.accepted] == ["limit.changed"]

    # Down for longer: one backend.down once the grace period is over, then backend.up.
    await csms.stop()
    await link_is(False)
    clock.advance(max(await clock.wait_for_sleepers(2)))
    await receiver.wait_until(lambda: len(receiver.accepted) == 2)
    down = receiver.accepted[1]
    assert (down["event"], down["data"]["backend_id"]) == ("backend.down", "cpo")
    reconnect_s = await back_up()
    await receiver.wait_until(lambda: len(receiver.accepted) == 3)
    up = receiver.accepted[2]
    assert (up["event"], up["data"]["backend_id"], up["data"]["down_s"]) == (
        "backend.up",
        "cpo",
        round(30 + reconnect_s, 3),
    )
    await receiver.stop()


async def test_refused_commands_and_the_homeowners_switches_are_events(
    start_proxy: StartProxy, connect_charger: ConnectCharger, start_csms: Any
) -> None:
    receiver = await Receiver().start()
    csms = await start_csms("cpo")
    proxy = await start_proxy(
        api_token=TOKEN, ocpp_services=[service(csms)], webhooks=[hook(receiver.url)]
    )
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Available")
    await csms.wait_connected("CP_1")
    assert (await api(proxy, "POST", "/api/v1/override", {"enabled": True}))[0] == 200
    answer = await csms.call("CP_1", call16.RemoteStartTransaction(id_tag="APP", connector_id=1))
    assert answer.status == "Rejected"
    assert (await api(proxy, "POST", "/api/v1/shared_charging", {"enabled": False}))[0] == 200
    assert (await api(proxy, "POST", "/api/v1/max_current", {"max_current_a": 10}))[0] == 200

    wanted = ("override.changed", "command.refused", "shared_charging.changed", "limit.changed")

    def got() -> dict[str, Any]:
        return {b["event"]: b for b in receiver.accepted if b["event"] in wanted}

    await receiver.wait_until(lambda: len(got()) == len(wanted))
    events = got()
    assert events["override.changed"]["data"]["enabled"] is True
    refused = events["command.refused"]
    assert refused["charge_point_id"] == "CP_1"
    assert refused["data"]["backend_id"] == "cpo"
    assert refused["data"]["action"] == "RemoteStartTransaction"
    assert refused["data"]["rule"] == "override"
    assert events["shared_charging.changed"]["data"]["enabled"] is False
    assert events["limit.changed"]["data"]["max_current_a"] == 10
    await receiver.stop()


async def test_the_relays_at_risk_alert_is_an_event(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    receiver = await Receiver().start()
    proxy = await start_proxy(
        api_token=TOKEN, webhooks=[hook(receiver.url, events=["messages.at_risk"])]
    )
    charger = await connect_charger(proxy)
    await charger.boot()
    # What the relay core does when transaction messages may be lost (its alert, its notice).
    alert = {"kind": "messages_at_risk", "backend_id": "cpo", "queued": 19500, "reason": "full"}
    proxy.hub().alerts.append(alert)
    proxy.registry.changes.notify()
    await receiver.wait_until(lambda: receiver.accepted)
    (body,) = receiver.accepted
    assert body["event"] == "messages.at_risk" and body["charge_point_id"] == "CP_1"
    assert body["data"] == {"backend_id": "cpo", "queued": 19500, "reason": "full"}
    await receiver.stop()
