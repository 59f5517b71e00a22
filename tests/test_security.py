"""Issue 7: nobody gets in who doesn't belong; bad peers and bad frames break nothing.

Charger HTTP Basic (security profiles 1 and 2), inbound backend secrets and their slow-down,
schema validation of commands and charger CALLs, connection caps, the handshake timeout, the
command queue bound, and secrets kept out of logs, the message log and ``/status``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
from typing import Any

import aiohttp
import pytest
import websockets
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus

from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.command_queue import MAX_QUEUED_COMMANDS
from ocpp_proxy.security import schema
from ocpp_proxy.security.schema import MAX_DESCRIPTION, check_request
from ocpp_proxy.server.keys import CONFIG, METRICS, THROTTLE
from tests.conftest import ConnectCharger, Proxy, StartProxy, service

PASSWORD = "right-password-1"
CHARGERS = [{"id": "CP_1", "password": PASSWORD}]
TOKEN = "fleet-secret-123"
API_TOKEN = "api-token-for-tests-1"
BACKENDS = [{"id": "fleet", "token": TOKEN}]
#: The CALLERROR codes of OCPP-J 1.6 §4.2.3 a schema violation may get.
CODES_16 = {
    "FormationViolation",
    "PropertyConstraintViolation",
    "OccurenceConstraintViolation",
    "TypeConstraintViolation",
}
#: A backend the arbiter lets change the charger (so that only the schema can refuse).
TRUSTED = [{"id": "fleet", "token": TOKEN, "allow_config_changes": True}]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def handshake(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """The HTTP status of a WebSocket handshake (101 when it opened) and the response headers."""
    try:
        async with websockets.connect(
            url, subprotocols=["ocpp1.6"], additional_headers=headers, open_timeout=5
        ):
            return 101, None
    except InvalidStatus as err:
        return err.response.status_code, err.response.headers


async def status(proxy: Proxy) -> Any:
    """``/status`` as the homeowner sees it (with the API token, should it be required)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{proxy.port}/status",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def backend(proxy: Proxy, token: str, version: str = "1.6", **connect: Any) -> Any:
    """An inbound backend's raw WebSocket (the caller closes it)."""
    return await websockets.connect(
        f"{proxy.base}/backend?id=fleet",
        subprotocols=[f"ocpp{version}"],
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=5,
        **connect,
    )


async def answer_to(ws: Any, unique_id: str) -> list[Any]:
    """The answer to ``unique_id``, skipping the charger's CALLs the backend is sent meanwhile."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame[0] != 2 and frame[1] == unique_id:
            return frame


# -- charger authentication ------------------------------------------------------------------


async def test_charger_with_its_password_connects_and_reaches_the_csms(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("energy_co")
    proxy = await start_proxy(ocpp_services=[service(csms)], chargers=CHARGERS, api_token=API_TOKEN)
    charger = await connect_charger(proxy, password=PASSWORD)
    await charger.boot()
    assert (await csms.wait_for_call("BootNotification"))[0].charge_point_id == "CP_1"
    assert (await status(proxy))["security"] == {
        "charger_auth": "basic",
        "tls": False,
        "client_certificates": False,
    }


@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        pytest.param("/charger/CP_1", None, "no HTTP Basic credentials", id="missing"),
        pytest.param("/charger/CP_1", basic("CP_1", "wrong"), "wrong password", id="wrong"),
        pytest.param(
            "/charger/CP_9", basic("CP_9", PASSWORD), "unknown charge point", id="unknown"
        ),
        pytest.param(
            "/charger/CP_1", basic("CP_2", PASSWORD), "not the charge point id", id="user"
        ),
        pytest.param("/charger", basic("CP_1", "wrong"), "wrong password", id="plain-path"),
    ],
)
async def test_charger_without_the_right_password_gets_401_before_the_upgrade(
    start_proxy: StartProxy,
    caplog: pytest.LogCaptureFixture,
    path: str,
    headers: dict[str, str] | None,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO)
    proxy = await start_proxy(chargers=CHARGERS)
    code, response_headers = await handshake(proxy.base + path, headers)
    assert code == 401
    assert response_headers["WWW-Authenticate"] == 'Basic realm="ocpp-proxy"'
    assert reason in caplog.text
    assert PASSWORD not in caplog.text and "wrong" not in caplog.text.replace("wrong password", "")
    assert proxy.registry.get("CP_1") is None, "no charge point was opened for it"


async def test_without_configured_chargers_any_id_connects_and_status_says_open(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(api_token=API_TOKEN)
    charger = await connect_charger(proxy, "ANY_ID_42")
    assert (await charger.boot()).status == "Accepted"
    assert (await status(proxy))["security"]["charger_auth"] == "open"


# -- inbound backends ------------------------------------------------------------------------


async def test_backend_secret_right_wrong_and_missing(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(inbound_backends=BACKENDS)
    url = f"{proxy.base}/backend?id=fleet"
    assert (await handshake(url, {"Authorization": f"Bearer {TOKEN}"}))[0] == 101
    assert (await handshake(f"{url}&token={TOKEN}"))[0] == 101
    assert (await handshake(url, {"Authorization": "Bearer wrong-secret"}))[0] == 401
    assert (await handshake(url))[0] == 401


async def _refused_with(
    session: aiohttp.ClientSession, url: str, token: str = "wrong-secret"
) -> tuple[int, str | None]:
    """The HTTP status (and Retry-After) a backend handshake is refused with."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
    headers = refused.value.headers or {}
    return refused.value.status, headers.get("Retry-After")


async def test_repeated_backend_failures_lock_that_address_out_at_once(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(inbound_backends=BACKENDS)
    throttle = proxy.app[THROTTLE]
    now = [1000.0]
    throttle.clock = lambda: now[0]
    throttle.threshold, throttle.first_delay, throttle.max_delay = 3, 4.0, 6.0
    url = f"http://127.0.0.1:{proxy.port}/backend?id=fleet"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with (
        aiohttp.ClientSession() as session,
        aiohttp.ClientSession(connector=connector) as other,
    ):
        assert [await _refused_with(session, url) for _ in range(4)] == [(401, None)] * 4
        # Locked for 4 s: even the right secret is not looked at, and nobody waits.
        assert await _refused_with(session, url, TOKEN) == (429, "4")
        # Another address is not locked for another id (the whole of 127.0.0.0/8 is loopback).
        assert await _refused_with(other, url.replace("fleet", "nobody")) == (401, None)
        # ... but guessing at `fleet` from there is: the id is locked too.
        assert (await _refused_with(other, url))[0] == 429
        now[0] += 4.5
        ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {TOKEN}"})
        await ws.close()
        # A failure past the threshold locks again, for twice as long, capped.
        assert await _refused_with(session, url) == (401, None)
        assert await _refused_with(session, url) == (429, "6")
    assert proxy.app[METRICS].value("ocpp_proxy_limit_hits_total", limit="auth_throttle") == 3


# -- schema validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "named"),
    [
        ({"connectorId": 1, "type": "Sideways"}, "PropertyConstraintViolation", "type"),
        ({"connectorId": "one", "type": "Operative"}, "TypeConstraintViolation", "connectorId"),
        ({"connectorId": 1}, "OccurenceConstraintViolation", "'type'"),
        ({"connectorId": 1, "type": "Operative", "x": 1}, "FormationViolation", "'x'"),
    ],
)
async def test_schema_invalid_command_gets_a_callerror_and_never_reaches_the_charger(
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    payload: dict[str, Any],
    code: str,
    named: str,
) -> None:
    proxy = await start_proxy(inbound_backends=TRUSTED)
    charger = await connect_charger(proxy)
    await charger.boot()
    async with await backend(proxy, TOKEN) as ws:
        await ws.send(json.dumps([2, "bad-1", "ChangeAvailability", payload]))
        answer = await answer_to(ws, "bad-1")
        assert answer[:3] == [4, "bad-1", code], answer
        assert named in answer[3], answer
        # A valid command after it does reach the charger, and is the only one it saw.
        await ws.send('[2,"ok-1","ChangeAvailability",{"connectorId":1,"type":"Operative"}]')
        assert (await answer_to(ws, "ok-1"))[0] == 3
    assert [action for action, _ in charger.received] == ["ChangeAvailability"]
    assert charger.received[0][1]["type"] == "Operative"
    hub = proxy.hub()
    refused = [e for e in await hub.store.audit_entries("CP_1") if e.decision == "refused"]
    assert [(e.action, e.rule) for e in refused] == [("ChangeAvailability", "schema")]


async def test_schema_invalid_201_command_gets_the_201_code(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(inbound_backends=TRUSTED)
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    async with await backend(proxy, TOKEN, version="2.0.1") as ws:
        await ws.send('[2,"r-1","RequestStartTransaction",{"remoteStartId":1}]')
        answer = await answer_to(ws, "r-1")
    assert answer[:3] == [4, "r-1", "OccurrenceConstraintViolation"], answer
    assert "'idToken' is a required property" in answer[3]
    assert charger.received == []


@settings(max_examples=150, deadline=None)
@given(
    action=st.sampled_from(["RemoteStartTransaction", "SetChargingProfile", "DataTransfer"]),
    payload=st.dictionaries(
        st.sampled_from(["idTag", "connectorId", "csChargingProfiles", "vendorId", "data", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=8,
        ),
    ),
)
def test_any_payload_gets_an_answer_never_an_exception(action: str, payload: dict) -> None:
    """Whatever a backend sends, validation answers None or a Violation with an OCPP code."""
    violation = check_request(OcppVersion.V16, action, payload)
    assert violation is None or (
        violation.code in CODES_16 and len(violation.description) <= MAX_DESCRIPTION
    )


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from(
        [
            (OcppVersion.V16, "MeterValues"),
            (OcppVersion.V16, "StatusNotification"),
            (OcppVersion.V16, "StartTransaction"),
            (OcppVersion.V201, "TransactionEvent"),
            (OcppVersion.V201, "StatusNotification"),
        ]
    ),
    payload=st.dictionaries(
        st.sampled_from(
            [
                "connectorId",
                "transactionId",
                "meterValue",
                "timestamp",
                "status",
                "errorCode",
                "idTag",
                "meterStart",
                "eventType",
                "triggerReason",
                "seqNo",
                "transactionInfo",
                "evseId",
                "connectorStatus",
                "x",
            ]
        ),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats()
            | st.text(max_size=30)
            | st.sampled_from(["Available", "NoError", "Updated", "2026-12-01T00:00:00Z"]),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.sampled_from(["sampledValue", "value", "timestamp"]), inner)
            ),
            max_leaves=8,
        ),
    ),
)
# Payloads both checks pass (random ones mostly lack a required field): the pass is compared too.
@example(
    case=(OcppVersion.V16, "StatusNotification"),
    payload={"connectorId": 1, "errorCode": "NoError", "status": "Available"},
)
@example(
    case=(OcppVersion.V16, "MeterValues"),
    payload={
        "connectorId": 1,
        "meterValue": [{"timestamp": "2026-12-01T00:00:00Z", "sampledValue": [{"value": "1"}]}],
    },
)
@example(
    case=(OcppVersion.V201, "StatusNotification"),
    payload={
        "timestamp": "2026-12-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    },
)
def test_the_compiled_check_never_passes_what_jsonschema_refuses(
    case: tuple[OcppVersion, str], payload: dict
) -> None:
    """The fast validator's pass is final: it must agree with jsonschema on every such payload."""
    version, action = case
    fast, exact = schema._fast_validator(version, action), schema._validator(version, action)
    assert fast is not None and exact is not None
    try:
        fast(payload)
    except Exception:
        return  # refused: jsonschema then decides, as check_request does
    assert exact.is_valid(payload), payload


async def test_unknown_action_is_passed_on_unvalidated(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(inbound_backends=TRUSTED)
    charger = await connect_charger(proxy)
    await charger.boot()
    async with await backend(proxy, TOKEN) as ws:
        await ws.send('[2,"v-1","VendorSpecificThing",{"anything":[1,2]}]')
        answer = await answer_to(ws, "v-1")
    # The charger's ocpp library, not the proxy, answers: it has no such action.
    assert answer[:3] == [4, "v-1", "NotSupported"], answer
    assert "VendorSpecificThing is not an action" in answer[4]["cause"]


async def test_decimal_limits_in_a_16_charging_profile_are_valid(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    """OCPP 1.6 schemas say multipleOf 0.1: 21.4 must pass although it is 21.399... as a float."""
    proxy = await start_proxy(inbound_backends=[{**BACKENDS[0], "allow_config_changes": True}])
    charger = await connect_charger(proxy)
    await charger.boot()
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 7,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
            },
        },
    }
    async with await backend(proxy, TOKEN) as ws:
        await ws.send(json.dumps([2, "p-1", "SetChargingProfile", profile]))
        answer = await answer_to(ws, "p-1")
    assert answer[0] == 3, answer
    assert await charger.wait_for_command("SetChargingProfile")


BAD_STATUS = (
    '[2,"s-1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Sleepy"}]'
)


async def test_charger_schema_violation_is_forwarded_counted_and_logged_once(
    start_csms: Any, start_proxy: StartProxy, caplog: pytest.LogCaptureFixture
) -> None:
    csms = await start_csms("energy_co")
    proxy = await start_proxy(ocpp_services=[service(csms)])
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
        for unique_id in ("s-1", "s-2"):
            await ws.send(BAD_STATUS.replace("s-1", unique_id))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer[1] == unique_id
        await csms.wait_for_call("StatusNotification", count=2)
    metrics = proxy.hub().metrics
    assert (
        metrics.value(
            "ocpp_proxy_schema_violations_total", peer="charger", action="StatusNotification"
        )
        == 2
    )
    assert caplog.text.count("breaks the schema") == 1


async def test_strict_validation_refuses_a_violating_charger_call(
    start_csms: Any, start_proxy: StartProxy
) -> None:
    csms = await start_csms("energy_co")
    proxy = await start_proxy(ocpp_services=[service(csms)], strict_charger_validation=True)
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
        await ws.send(BAD_STATUS)
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer[:3] == [4, "s-1", "PropertyConstraintViolation"], answer
        assert "Sleepy" in answer[3]
        await ws.send('[2,"h-1","Heartbeat",{}]')
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "h-1"]
    await csms.wait_for_call("Heartbeat")
    assert csms.calls("StatusNotification") == []


# -- limits ----------------------------------------------------------------------------------


async def test_connection_caps_give_503_and_spare_other_addresses(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(max_connections=3, max_connections_per_address=2)
    await connect_charger(proxy, "CP_A")
    await connect_charger(proxy, "CP_B")
    code, _ = await handshake(proxy.charger_url("CP_C"))
    assert code == 503  # the third from 127.0.0.1
    proxy_url = f"ws://127.0.0.1:{proxy.port}/charger/CP_D"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        ws = await other.ws_connect(proxy_url, protocols=("ocpp1.6",))  # another address: fine
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await other.ws_connect(proxy_url, protocols=("ocpp1.6",))
        assert refused.value.status == 503  # the total cap
        await ws.send_str('[2,"h","Heartbeat",{}]')
        assert json.loads((await asyncio.wait_for(ws.receive(), 5)).data)[:2] == [3, "h"]
        await ws.close()
    metrics = proxy.hub("CP_A").metrics
    assert metrics.value("ocpp_proxy_limit_hits_total", limit="max_connections") == 1
    assert metrics.value("ocpp_proxy_limit_hits_total", limit="max_connections_per_address") == 1


async def test_oversized_frames_are_refused_and_counted_the_link_stays_up(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(max_frame_bytes=2048, inbound_backends=BACKENDS)
    big = json.dumps({"vendorId": "x" * 4000})
    async with (
        websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as charger,
        await backend(proxy, TOKEN) as ws,
    ):
        await charger.send(f'[2,"big-c","DataTransfer",{big}]')
        assert json.loads(await asyncio.wait_for(charger.recv(), 5))[:3] == [
            4,
            "big-c",
            "FormationViolation",
        ]
        await ws.send(f'[2,"big-b","DataTransfer",{big}]')
        assert (await answer_to(ws, "big-b"))[:3] == [4, "big-b", "FormationViolation"]
        await charger.send('[2,"h","Heartbeat",{}]')
        assert json.loads(await asyncio.wait_for(charger.recv(), 5))[:2] == [3, "h"]
    hits = proxy.app[METRICS].value("ocpp_proxy_limit_hits_total", limit="max_frame_bytes")
    assert hits == 2


async def test_a_client_that_never_finishes_its_handshake_is_dropped(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(handshake_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /charger/CP_1 HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the proxy
    assert asyncio.get_running_loop().time() - started < 3
    writer.close()
    # A charger that does complete its handshake is not affected by the timer.
    charger = await connect_charger(proxy)
    assert (await charger.boot()).status == "Accepted"


async def test_command_queue_is_bounded(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(inbound_backends=BACKENDS, response_timeout=5)
    # A charger that never answers: one command in flight, the rest wait in the queue.
    async with (
        websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]),
        await backend(proxy, TOKEN) as ws,
    ):
        over = MAX_QUEUED_COMMANDS + 1  # g-0 in flight, g-1 .. g-MAX queued
        for n in range(over + 1):
            await ws.send(json.dumps([2, f"g-{n}", "GetConfiguration", {}]))
        answer = await answer_to(ws, f"g-{over}")
        assert answer[:3] == [4, f"g-{over}", "GenericError"], answer
        assert "too many commands" in answer[3]
        assert proxy.hub().commands.depth == MAX_QUEUED_COMMANDS + 1
    assert proxy.app[METRICS].value("ocpp_proxy_limit_hits_total", limit="command_queue") == 1


# -- secrets ---------------------------------------------------------------------------------


async def test_secrets_stay_out_of_logs_message_log_and_status(
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    csms = await start_csms("energy_co")
    service_password = "csms-password-77"
    proxy = await start_proxy(
        ocpp_services=[service(csms, auth_type="basic", password=service_password)],
        inbound_backends=BACKENDS,
        chargers=CHARGERS,
        api_token=API_TOKEN,
    )
    charger = await connect_charger(proxy, password=PASSWORD)
    await charger.boot()
    await csms.wait_for_call("BootNotification")
    # A backend with its secret in the query, and one with a wrong secret in the header.
    async with websockets.connect(
        f"{proxy.base}/backend?id=fleet&token={TOKEN}", subprotocols=["ocpp1.6"]
    ):
        pass
    await handshake(f"{proxy.base}/backend?id=fleet&token=guess-{TOKEN}")
    await handshake(proxy.charger_url(), basic("CP_1", f"guess-{PASSWORD}"))
    body = json.dumps(await status(proxy))
    hub = proxy.hub()
    await hub.store.flush()
    logged = "\n".join(row.frame for row in await hub.store.messages("CP_1", limit=1000))
    # The proxy's records and aiohttp's (access log included); websockets.* are the test's
    # own peers, which log the headers they send and receive at DEBUG.
    proxy_log = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith("websockets")
    )
    assert "/backend?id=fleet&token=***" in proxy_log  # the access log line, masked
    for secret in (PASSWORD, TOKEN, service_password, API_TOKEN):
        assert secret not in proxy_log, secret
        assert secret not in body, secret
        assert secret not in logged, secret
    assert "Authorization" not in proxy_log
    data_dir = proxy.app[CONFIG].data_dir
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700


def test_the_log_filter_masks_what_other_code_might_log(tmp_path: Any) -> None:
    """The safety net cli.main installs: records from any logger, exception texts included."""
    from ocpp_proxy.config import parse_config
    from ocpp_proxy.security.redaction import install

    config = parse_config(
        {"chargers": CHARGERS, "inbound_backends": BACKENDS, "data_dir": str(tmp_path)}
    )
    logger = logging.getLogger("test_redaction")
    logger.propagate = False
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger.addHandler(handler)
    install(config, logger)
    try:
        logger.warning("GET /backend?id=fleet&token=%s HTTP/1.1", "not-configured-1")
        logger.warning("headers: %s", {"Authorization": "Basic Q1BfMTpwdw=="})
        logger.warning("the password is %s", PASSWORD)
        try:
            raise ValueError(f"cannot dial ws://x/?token={TOKEN}")
        except ValueError:
            logger.exception("upstream failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(lines)
    for secret in ("not-configured-1", "Q1BfMTpwdw==", PASSWORD, TOKEN):
        assert secret not in text, secret
    assert "token=***" in text and "Basic ***" in text and "cannot dial" in text
