"""The homeowner's REST API end to end: the simulator as charger, CSMS peers, real HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import stat
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from ocpp.v16 import call as call16
from openapi_spec_validator import validate

from ocpp_proxy.simulator.charger import SimulatedCharger
from ocpp_proxy.web.auth import INGRESS_ADDRESS, TOKEN_FILE
from ocpp_proxy.web.routes import PREFIX
from tests.conftest import ConnectCharger, Proxy, StartProxy, service
from tests.peers import Csms
from tests.test_tls import Pki
from tests.test_tls import pki as pki_fixture

pki = pki_fixture  # a test CA and server certificate, for the main port's TLS

START = call16.RemoteStartTransaction(id_tag="APP", connector_id=1)
#: What one simulated session delivers: 3 samples of 7400 W x 60 s, rounded to Wh each.
SESSION_KWH = 3 * round(7400 * 60 / 3600) / 1000


async def request(
    proxy: Proxy,
    method: str,
    path: str,
    *,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """One HTTP request; the JSON body when it is JSON, else the text."""
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"http://127.0.0.1:{proxy.port}{path}", json=body, headers=headers
        ) as response,
    ):
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, json.loads(text), response.headers
        return response.status, text, response.headers


async def get(proxy: Proxy, path: str) -> Any:
    status, body, _ = await request(proxy, "GET", path)
    assert status == 200, body
    return body


async def command(proxy: Proxy, name: str, body: Any, cp: str = "CP_1") -> tuple[int, Any]:
    status, answer, _ = await request(
        proxy, "POST", f"{PREFIX}/chargers/{cp}/commands/{name}", body=body, token=proxy.api_token
    )
    return status, answer


@pytest.fixture
async def relayed(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> tuple[Csms, Proxy, SimulatedCharger]:
    """One CSMS paying 0.30 EUR/kWh, the proxy, and a charger that ran two sessions."""
    a = await start_csms("a", first_transaction_id=100)
    proxy = await start_proxy(
        ocpp_services=[service(a, rate_per_kwh=0.30, currency="EUR")],
        home_rate_per_kwh=0.25,
    )
    charger = await connect_charger(proxy)
    await a.wait_connected("CP_1")
    await charger.run_session(transactions=2, meter_samples=3)
    await a.wait_for_call("StopTransaction", count=2)
    await proxy.registry.changes.wait_for(lambda: not proxy.hub().sessions.running(), timeout_s=5)
    await proxy.recorded()  # sessions are written behind the frames' path
    return a, proxy, charger


# -- the document ----------------------------------------------------------------------------


async def test_openapi_document_is_valid_and_lists_every_api_route(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    document = await get(proxy, "/api/v1/openapi.json")
    validate(document)
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in proxy.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(PREFIX)
        and route.method != "HEAD"
    }
    documented = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith(PREFIX)
    }
    assert registered == documented
    for alias in ("/status", "/sessions", "/override", "/max_current", "/metrics"):
        assert alias in document["paths"], alias


# -- access ----------------------------------------------------------------------------------


async def test_direct_port_needs_the_generated_token_which_is_kept_private(
    start_proxy: StartProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ocpp_proxy.web.auth")
    proxy = await start_proxy(api_public_read=False)
    token = proxy.api_token
    token_file = Path(tmp_path / "data" / TOKEN_FILE)
    assert (await asyncio.to_thread(token_file.read_text)).strip() == token
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    # The log says where the token is kept, never the token itself.
    assert not any(token in r.getMessage() for r in caplog.records)
    assert sum(str(token_file) in r.getMessage() for r in caplog.records) == 1

    for method, path in (("GET", "/api/v1/status"), ("GET", "/status"), ("GET", "/sessions")):
        status, body, headers = await request(proxy, method, path)
        assert (status, body["field"]) == (401, "Authorization"), path
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert (await request(proxy, "GET", "/api/v1/status", token="wrong"))[0] == 401
    assert (await request(proxy, "GET", "/api/v1/status", token=token))[0] == 200
    assert (await request(proxy, "GET", f"/api/v1/status?token={token}"))[0] == 200
    status, _, _ = await request(proxy, "POST", "/override", body={"enabled": True})
    assert status == 401
    # ?token= is for GETs only (event streams, downloads).
    status, _, _ = await request(proxy, "POST", f"/override?token={token}", body={"enabled": True})
    assert status == 401
    # Not behind the token: liveness, the page, and the charger's own endpoint.
    assert (await request(proxy, "GET", "/health"))[0] == 200
    assert (await request(proxy, "GET", "/api/v1/health"))[0] == 200
    status, page, _ = await request(proxy, "GET", "/")
    assert status == 200 and "<html" in page
    charger = await SimulatedCharger.connect(proxy.charger_url(), "CP_1", log=lambda _: None)
    try:
        assert (await charger.boot()).status == "Accepted"
    finally:
        await charger.close()

    # The next start keeps the token and does not print it again.
    await proxy.stop()
    caplog.clear()
    again = await start_proxy(api_public_read=False)
    assert again.api_token == token
    assert not any(token in r.getMessage() for r in caplog.records)


async def test_configured_token_and_public_read(start_proxy: StartProxy, tmp_path: Path) -> None:
    proxy = await start_proxy(api_token="s3cret-token-for-the-api", api_public_read=True)
    assert not (tmp_path / "data" / TOKEN_FILE).exists()
    assert (await request(proxy, "GET", "/api/v1/sessions"))[0] == 200
    assert (await request(proxy, "GET", "/metrics"))[0] == 200
    status, body, _ = await request(proxy, "POST", "/api/v1/override", body={"enabled": True})
    assert (status, body["field"]) == (401, "Authorization")
    status, body, _ = await request(
        proxy, "POST", "/api/v1/override", body={"enabled": True}, token="s3cret-token-for-the-api"
    )
    assert (status, body["enabled"]) == (200, True)


async def ingress_request(
    proxy: Proxy, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """A request to the ingress listener, as the Supervisor's ingress proxy sends it."""
    assert proxy.ingress_port is not None
    headers = {"X-Ingress-Path": "/api/hassio_ingress/abc"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"http://127.0.0.1:{proxy.ingress_port}{path}", json=body, headers=headers
        ) as response,
    ):
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, json.loads(text)
        return response.status, text


async def test_ingress_listener_trusts_only_the_supervisor(start_proxy: StartProxy) -> None:
    # The real Supervisor address: this test's 127.0.0.1 is a stranger on the ingress port.
    proxy = await start_proxy(ingress_peer=INGRESS_ADDRESS, api_public_read=False)
    for method, path in (("GET", "/"), ("GET", "/api/v1/status"), ("POST", "/api/v1/override")):
        status, text = await ingress_request(proxy, method, path, {"enabled": True})
        assert status == 403 and "Supervisor only" in text, path
    # The container's own HEALTHCHECK may read /health there.
    assert (await ingress_request(proxy, "GET", "/health"))[0] == 200
    # Ingress headers on the main port earn no trust either.
    status, _, _ = await request(
        proxy,
        "POST",
        "/api/v1/override",
        body={"enabled": True},
        headers={"X-Ingress-Path": "/api/hassio_ingress/abc"},
    )
    assert status == 401


async def test_ingress_serves_page_and_api_in_plain_http_while_the_main_port_speaks_tls(
    start_proxy: StartProxy, pki: Pki
) -> None:
    proxy = await start_proxy(
        ingress_peer="127.0.0.1",  # stands in for the Supervisor's 172.30.32.2
        api_public_read=False,
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
    )
    assert proxy.tls
    status, page = await ingress_request(proxy, "GET", "/")
    assert status == 200 and "<html" in page
    status, body = await ingress_request(proxy, "POST", "/api/v1/override", {"enabled": True})
    assert (status, body["enabled"]) == (200, True)
    assert (await ingress_request(proxy, "GET", "/api/v1/status"))[0] == 200
    # Chargers and backends belong on the main port.
    assert (await ingress_request(proxy, "GET", "/charger/CP_1"))[0] == 404


async def test_token_is_shown_and_regenerated_through_ingress_only(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(ingress_peer="127.0.0.1", api_public_read=False)
    old = proxy.api_token
    status, body = await ingress_request(proxy, "GET", "/api/v1/token")
    assert status == 200
    assert body == {
        "token": old,
        "source": "generated",
        "file": str(tmp_path / "data" / TOKEN_FILE),
    }
    # Not on the main port, not even with the token.
    status, body, _ = await request(proxy, "GET", "/api/v1/token", token=old)
    assert status == 403 and "sidebar" in body["error"]
    assert (await request(proxy, "POST", "/api/v1/token", token=old))[0] == 403

    status, body = await ingress_request(proxy, "POST", "/api/v1/token")
    new = body["token"]
    assert status == 200 and new != old and len(new) >= 32
    assert (tmp_path / "data" / TOKEN_FILE).read_text().strip() == new
    assert (await request(proxy, "GET", "/api/v1/status", token=old))[0] == 401
    assert (await request(proxy, "GET", "/api/v1/status", token=new))[0] == 200


async def test_a_configured_token_is_changed_in_the_options_not_on_the_page(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(ingress_peer="127.0.0.1", api_token="s3cret-token-for-the-api")
    status, body = await ingress_request(proxy, "GET", "/api/v1/token")
    assert (status, body["source"], body["file"]) == (200, "api_token option", None)
    status, body = await ingress_request(proxy, "POST", "/api/v1/token")
    assert status == 409 and "api_token option" in body["error"]
    assert proxy.api_token == "s3cret-token-for-the-api"


async def test_page_uses_relative_urls_so_it_works_under_the_ingress_prefix(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(api_public_read=False)
    headers = {"X-Ingress-Path": "/api/hassio_ingress/abc"}
    status, page, _ = await request(proxy, "GET", "/", headers=headers)
    assert status == 200
    assert 'src="static/app.js"' in page and 'href="static/app.css"' in page
    assert 'src="/' not in page and 'href="/' not in page
    status, script, _ = await request(proxy, "GET", "/static/app.js")
    assert status == 200 and '"api/v1/events"' in script and "fetch('/" not in script


# -- reading ---------------------------------------------------------------------------------


async def test_sessions_filters_paging_exports_and_one_session_with_samples(
    relayed: tuple[Csms, Proxy, SimulatedCharger],
) -> None:
    _, proxy, _ = relayed
    listed = (await get(proxy, "/api/v1/sessions"))["sessions"]
    assert len(listed) == 2
    for row in listed:
        assert row["owner"] == "a" and row["energy_kwh"] == pytest.approx(SESSION_KWH)
        assert row["revenue"] == pytest.approx(SESSION_KWH * 0.30, abs=1e-4)
        assert row["home_cost"] is None  # the backend pays for it
        assert row["backend_transaction_ids"]["a"] in ("100", "101")
    assert (await get(proxy, "/sessions"))["sessions"] == listed

    first = (await get(proxy, "/api/v1/sessions?limit=1"))["sessions"]
    second = (await get(proxy, "/api/v1/sessions?limit=1&offset=1"))["sessions"]
    assert [first[0]["id"], second[0]["id"]] == [listed[0]["id"], listed[1]["id"]]
    today, tomorrow = date.today(), date.today() + timedelta(days=1)
    yesterday = today - timedelta(days=1)
    for query, count in (
        ("charger=CP_1", 2),
        ("charger=CP_9", 0),
        ("backend=a", 2),
        ("backend=b", 0),
        ("owner=a", 2),
        ("owner=local", 0),
        (f"from={today}", 2),
        (f"to={today}", 2),
        (f"from={tomorrow}", 0),
        (f"to={yesterday}", 0),
    ):
        assert len((await get(proxy, f"/api/v1/sessions?{query}"))["sessions"]) == count, query
    for query, field in (("limit=x", "limit"), ("offset=-1", "offset"), ("from=soon", "from")):
        status, body, _ = await request(proxy, "GET", f"/api/v1/sessions?{query}")
        assert (status, body["field"]) == (400, field), query
    status, body, _ = await request(proxy, "GET", "/api/v1/sessions?format=xml")
    assert (status, body["field"]) == (400, "format")

    status, text, headers = await request(proxy, "GET", "/api/v1/sessions?format=csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [s["id"] for s in listed]
    assert float(rows[0]["energy_kwh"]) == pytest.approx(SESSION_KWH)
    status, exported, _ = await request(proxy, "GET", "/api/v1/sessions?format=json")
    assert status == 200 and [s["id"] for s in exported] == [s["id"] for s in listed]

    one = await get(proxy, f"/api/v1/sessions/{listed[0]['id']}")
    assert one["transaction_id"] == listed[0]["transaction_id"]
    powers = [s["value"] for s in one["samples"] if s["measurand"] == "Power.Active.Import"]
    assert powers == [7400, 7400, 7400]
    status, body, _ = await request(proxy, "GET", "/api/v1/sessions/99999")
    assert (status, body["field"]) == (404, "session_id")
    status, body, _ = await request(proxy, "GET", "/api/v1/sessions/abc")
    assert (status, body["field"]) == (400, "session_id")


async def test_energy_per_period_charger_and_backend_with_csv(
    relayed: tuple[Csms, Proxy, SimulatedCharger],
) -> None:
    _, proxy, _ = relayed
    for period, label in (
        ("day", date.today().isoformat()),
        ("week", (date.today() - timedelta(days=date.today().weekday())).isoformat()),
        ("month", date.today().isoformat()[:7]),
    ):
        body = await get(proxy, f"/api/v1/insights/energy?period={period}")
        assert body["period"] == period
        (total,) = body["totals"]
        assert (total["period"], total["charge_point_id"], total["owner"]) == (label, "CP_1", "a")
        assert total["sessions"] == 2
        assert total["energy_kwh"] == pytest.approx(2 * SESSION_KWH)
        assert total["revenue"] == pytest.approx(2 * SESSION_KWH * 0.30, abs=1e-3)
        assert total["currency"] == "EUR"
    tomorrow = date.today() + timedelta(days=1)
    assert (await get(proxy, f"/api/v1/insights/energy?from={tomorrow}"))["totals"] == []
    status, text, _ = await request(proxy, "GET", "/api/v1/insights/energy?format=csv")
    (row,) = csv.DictReader(io.StringIO(text))
    assert float(row["energy_kwh"]) == pytest.approx(2 * SESSION_KWH) and row["owner"] == "a"
    status, body, _ = await request(proxy, "GET", "/api/v1/insights/energy?period=year")
    assert (status, body["field"]) == (400, "period")


async def test_sessions_nobody_pays_for_get_the_home_cost(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(home_rate_per_kwh=0.25, home_currency="CHF")
    charger = await connect_charger(proxy)
    await charger.run_session(transactions=1, meter_samples=3)
    await proxy.registry.changes.wait_for(lambda: not proxy.hub().sessions.running(), timeout_s=5)
    await proxy.recorded()  # sessions are written behind the frames' path
    (row,) = (await get(proxy, "/api/v1/sessions"))["sessions"]
    assert row["owner"] == "local"
    assert row["home_cost"] == pytest.approx(SESSION_KWH * 0.25, abs=1e-4)
    assert row["home_currency"] == "CHF"
    (total,) = (await get(proxy, "/api/v1/insights/energy"))["totals"]
    assert total["home_cost"] == pytest.approx(SESSION_KWH * 0.25, abs=1e-4)


async def test_chargers_messages_audit_status_live_metrics_health(
    relayed: tuple[Csms, Proxy, SimulatedCharger],
) -> None:
    _, proxy, _ = relayed
    (charger,) = (await get(proxy, "/api/v1/chargers"))["chargers"]
    assert (charger["id"], charger["online"], charger["vendor"]) == ("CP_1", True, "ocpp-proxy")
    assert charger["first_seen"] <= charger["last_seen"]

    messages = (await get(proxy, "/api/v1/chargers/CP_1/messages?limit=500"))["messages"]
    actions = {m["action"] for m in messages if m["peer"] == "charger" and m["direction"] == "in"}
    assert {"BootNotification", "StartTransaction", "MeterValues", "StopTransaction"} <= actions
    assert len((await get(proxy, "/api/v1/chargers/CP_1/messages?limit=2"))["messages"]) == 2
    status, body, _ = await request(proxy, "GET", "/api/v1/chargers/CP_9/messages")
    assert (status, body["field"]) == (404, "charge_point_id")

    status_body = await get(proxy, "/api/v1/status")
    assert status_body["chargers"][0]["backends"][0]["id"] == "a"
    assert "rules" in status_body and status_body == await get(proxy, "/status")
    assert (await get(proxy, "/api/v1/live"))["sessions"] == []
    assert (await get(proxy, "/api/v1/health"))["status"] == "ok"

    await command(proxy, "get_configuration", {})
    (entry,) = (await get(proxy, "/api/v1/audit?charger=CP_1&limit=1"))["entries"]
    assert (entry["actor"], entry["action"], entry["decision"]) == (
        "homeowner",
        "GetConfiguration",
        "allowed",
    )

    status, text, headers = await request(proxy, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'ocpp_proxy_charger_connected{charge_point="CP_1"} 1' in text
    assert (
        'ocpp_proxy_http_requests_total{method="GET",route="/api/v1/chargers",status="200"} 1'
        in text
    )
    assert (await request(proxy, "GET", "/api/v1/metrics"))[0] == 200


async def test_event_stream_sends_the_state_at_once_and_on_changes(
    relayed: tuple[Csms, Proxy, SimulatedCharger],
) -> None:
    _, proxy, _ = relayed
    url = f"http://127.0.0.1:{proxy.port}/api/v1/events?token={proxy.api_token}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.headers["Content-Type"] == "text/event-stream"

        async def next_update() -> dict[str, Any]:
            data = None
            async with asyncio.timeout(10):
                while True:
                    line = (await response.content.readline()).decode().strip()
                    if line.startswith("data: "):
                        data = json.loads(line[6:])
                    elif not line and data is not None:
                        return data

        first = await next_update()
        assert (
            first["chargers"][0]["id"] == "CP_1" and first["rules"]["override"]["enabled"] is False
        )
        await proxy.post_json("/api/v1/override", {"enabled": True})
        while not (update := await next_update())["rules"]["override"]["enabled"]:
            pass
        assert update["rules"]["override"]["api"] is True


# -- control ---------------------------------------------------------------------------------


async def test_homeowner_commands_in_ocpp_16_reach_the_charger_and_return_its_answer(
    relayed: tuple[Csms, Proxy, SimulatedCharger],
) -> None:
    _, proxy, charger = relayed
    status, body = await command(proxy, "start", {"connector_id": 1, "id_tag": "HOME"})
    assert (status, body["action"], body["status"], body["accepted"]) == (
        200,
        "RemoteStartTransaction",
        "Accepted",
        True,
    )
    assert (await charger.wait_for_command("RemoteStartTransaction"))["idTag"] == "HOME"
    await charger.wait_background()
    running = await proxy.registry.changes.wait_for(
        lambda: proxy.hub().sessions.running(), timeout_s=5
    )
    status, body = await command(proxy, "stop", {"transaction_id": running[0].transaction})
    assert (status, body["action"], body["status"]) == (200, "RemoteStopTransaction", "Accepted")
    await charger.wait_background()

    for name, payload, action, check in (
        ("unlock", {"connector_id": 1}, "UnlockConnector", {"connectorId": 1}),
        (
            "availability",
            {"connector_id": 1, "operative": False},
            "ChangeAvailability",
            {"connectorId": 1, "type": "Inoperative"},
        ),
        ("reset", {"type": "Soft"}, "Reset", {"type": "Soft"}),
        (
            "change_configuration",
            {"key": "HeartbeatInterval", "value": 120},
            "ChangeConfiguration",
            {"key": "HeartbeatInterval", "value": "120"},
        ),
        ("trigger", {"message": "Heartbeat"}, "TriggerMessage", {"requestedMessage": "Heartbeat"}),
        (
            "reserve",
            {"connector_id": 1, "id_tag": "HOME", "reservation_id": 7},
            "ReserveNow",
            {"connectorId": 1, "idTag": "HOME", "reservationId": 7},
        ),
        ("cancel_reservation", {"reservation_id": 7}, "CancelReservation", {"reservationId": 7}),
    ):
        status, body = await command(proxy, name, payload)
        assert (status, body["action"]) == (200, action), body
        received = await charger.wait_for_command(action)
        assert check.items() <= received.items(), (name, received)
    await charger.wait_background()
    status, body = await command(proxy, "get_configuration", {"keys": ["HeartbeatInterval"]})
    assert status == 200
    assert body["answer"]["configurationKey"][0] == {
        "key": "HeartbeatInterval",
        "readonly": False,
        "value": "120",
    }
    actions = [e["action"] for e in (await get(proxy, "/api/v1/audit?limit=20"))["entries"]]
    assert {"RemoteStartTransaction", "ReserveNow", "GetConfiguration"} <= set(actions)


async def test_homeowner_commands_in_ocpp_201_use_its_names(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy()
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    await charger.status(1, "Available")
    status, body = await command(proxy, "start", {"connector_id": 1, "id_tag": "HOME"})
    assert (status, body["action"], body["status"]) == (200, "RequestStartTransaction", "Accepted")
    request_sent = await charger.wait_for_command("RequestStartTransaction")
    assert request_sent["idToken"] == {"idToken": "HOME", "type": "Central"}
    assert isinstance(request_sent["remoteStartId"], int) and request_sent["evseId"] == 1
    await charger.wait_background()

    status, body = await command(
        proxy, "get_configuration", {"keys": ["OCPPCommCtrlr.HeartbeatInterval"]}
    )
    assert (status, body["action"]) == (200, "GetVariables")
    assert body["answer"]["getVariableResult"][0]["attributeValue"] == "300"
    status, body = await command(
        proxy, "change_configuration", {"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "60"}
    )
    assert (status, body["action"]) == (200, "SetVariables")
    assert charger.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "60"
    status, body = await command(proxy, "reset", {"type": "Hard"})
    assert (status, body["action"]) == (200, "Reset")
    assert (await charger.wait_for_command("Reset"))["type"] == "Immediate"
    status, body = await command(proxy, "get_configuration", {})
    assert (status, body["field"]) == (400, "keys")


async def test_command_errors_are_clear_and_never_hang(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(response_timeout=1)
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Faulted")

    status, body = await command(proxy, "start", {"connector_id": 1})
    assert (status, body["field"]) == (400, "id_tag")
    status, body = await command(proxy, "start", {"connector_id": "one", "id_tag": "X"})
    assert (status, body["field"]) == (400, "connector_id")
    status, body = await command(proxy, "trigger", {"message": "Everything"})
    assert (status, body["field"]) == (400, "requestedMessage")
    status, body, _ = await request(
        proxy,
        "POST",
        "/api/v1/chargers/CP_1/commands/get_configuration",
        headers={**proxy.auth, "Content-Type": "application/json"},
    )
    assert status == 200  # an empty body is {}: every key
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{proxy.port}/api/v1/chargers/CP_1/commands/reset",
            data="{not json",
            headers=proxy.auth,
        ) as response,
    ):
        assert (response.status, (await response.json())["field"]) == (400, "body")
    status, body = await command(proxy, "start", {"id_tag": "X"}, cp="CP_9")
    assert (status, body["field"]) == (404, "charge_point_id")
    status, body = await command(proxy, "launch", {})
    assert (status, body["field"]) == (404, "command")

    # The arbiter refuses even the homeowner a start on a faulted connector.
    status, body = await command(proxy, "start", {"connector_id": 1, "id_tag": "X"})
    assert (status, body["rule"]) == (409, "connector_unavailable")
    assert not any(action == "RemoteStartTransaction" for action, _ in charger.received)

    await charger.close()
    await proxy.registry.changes.wait_for(lambda: proxy.hub().charger is None, timeout_s=5)
    status, body = await command(proxy, "reset", {"type": "Soft"})
    assert (status, body["reason"]) == (409, "charger_offline")

    # A charger that never answers: 504 after response_timeout.
    async with websockets.connect(proxy.charger_url("CP_MUTE"), subprotocols=["ocpp1.6"]):
        await proxy.registry.changes.wait_for(
            lambda: (hub := proxy.registry.get("CP_MUTE")) and hub.charger, timeout_s=5
        )
        status, body = await command(proxy, "reset", {"type": "Soft"}, cp="CP_MUTE")
        assert status == 504 and "did not answer" in body["error"]


async def test_switches_shared_charging_override_and_max_current(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Available")
    await a.wait_connected("CP_1")

    assert (await get(proxy, "/api/v1/shared_charging"))["enabled"] is True
    status, body = await proxy.post_json("/api/v1/shared_charging", {"enabled": False})
    assert (status, body["enabled"], body["set_at_run_time"]) == (200, False, True)
    assert (await a.call("CP_1", START)).status == "Rejected"
    (entry,) = (await get(proxy, "/api/v1/audit?limit=1"))["entries"]
    assert (entry["actor"], entry["rule"]) == ("a", "shared_charging_off")
    assert (await get(proxy, "/status"))["rules"]["allow_shared_charging"] is False
    status, body = await proxy.post_json("/api/v1/shared_charging", {"enabled": "no"})
    assert (status, body["field"]) == (400, "enabled")
    await proxy.post_json("/api/v1/shared_charging", {"enabled": True})

    status, body = await proxy.post_json("/api/v1/override", {"enabled": True})
    assert (status, body["enabled"]) == (200, True)
    assert (await a.call("CP_1", START)).status == "Rejected"
    assert (await get(proxy, "/api/v1/audit?limit=1"))["entries"][0]["rule"] == "override"
    await proxy.post_json("/api/v1/override", {"enabled": False})

    status, body = await proxy.post_json("/api/v1/max_current", {"max_current_a": 10})
    assert (status, body["max_current_a"]) == (200, 10)
    assert (await get(proxy, "/api/v1/max_current"))["max_current_a"] == 10
    status, body = await proxy.post_json("/api/v1/max_current", {"max_current_a": "ten"})
    assert (status, body["field"]) == (400, "max_current_a")


async def test_shared_charging_switch_survives_a_restart(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy()
    await proxy.post_json("/api/v1/shared_charging", {"enabled": False})
    await proxy.stop()
    again = await start_proxy()
    assert (await get(again, "/api/v1/shared_charging"))["enabled"] is False


def test_token_command_prints_the_kept_or_configured_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ocpp_proxy import cli

    data_dir = tmp_path / "data"
    assert cli.main(["token", "--data-dir", str(data_dir)]) == 0
    first = capsys.readouterr().out.strip()
    assert len(first) >= 32 and (data_dir / TOKEN_FILE).read_text().strip() == first
    assert stat.S_IMODE(os.stat(data_dir / TOKEN_FILE).st_mode) == 0o600
    assert cli.main(["token", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == first
    assert cli.main(["token", "--data-dir", str(data_dir), "--regenerate"]) == 0
    second = capsys.readouterr().out.strip()
    assert second != first and (data_dir / TOKEN_FILE).read_text().strip() == second

    config = tmp_path / "config.yaml"
    config.write_text("api_token: s3cret-token-for-the-api\n")
    assert cli.main(["token", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "s3cret-token-for-the-api"
    assert cli.main(["token", "--config", str(config), "--regenerate"]) == 2
    assert "change it there" in capsys.readouterr().err
