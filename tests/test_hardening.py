"""Issue 16: what an attacker on the LAN or a hostile backend could still do, refused.

Duplicate JSON keys, failed logins holding connection slots, logs filling the disk, client
certificates not tied to the charge point, charger passwords stored in clear, the API's
throttle and weak secrets, and charge point ids that are no identity.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import InvalidStatus
from yarl import URL

from ocpp_proxy.protocol.frames import FrameError, parse_frame
from ocpp_proxy.relay.registry import IDLE_HUB_S
from ocpp_proxy.security.redaction import RedactingFilter, configured_secrets, mask_config_secrets
from ocpp_proxy.server.keys import CONFIG, LIMITER, METRICS, THROTTLE
from ocpp_proxy.store import Store
from tests.conftest import ConnectCharger, StartProxy, service
from tests.test_security import (
    API_TOKEN,
    BACKENDS,
    CHARGERS,
    PASSWORD,
    TOKEN,
    TRUSTED,
    answer_to,
    backend,
)

# -- 1. duplicate JSON keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '[2,"d-1","RemoteStopTransaction",{"transactionId":1,"transactionId":2}]',
        '[2,"d-1","SetChargingProfile",{"connectorId":0,"csChargingProfiles":'
        '{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile",'
        '"chargingProfileKind":"Absolute","chargingProfilePurpose":"ChargePointMaxProfile",'
        '"chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":'
        '[{"startPeriod":0,"limit":63}]}}}]',
        '[2,"d-1","DataTransfer",{"vendorId":"v","data":"x","x":[{"a":{"b":1,"b":1}}]}]',
        # White space before a colon, and a string holding '":', must not hide a repetition.
        '[2,"d-1","RemoteStopTransaction",{"transactionId":1, "transactionId" :2}]',
        '[2,"d-1","DataTransfer",{"vendorId":"v\\":","vendorId":"w","data":"\\":"}]',
        '[2,"d-1","DataTransfer",{"vendorId":"v","data":{"k":"\\":","k":0}}]',
    ],
)
def test_parse_refuses_a_repeated_key_at_any_depth_when_asked(raw: str) -> None:
    assert parse_frame(raw).unique_id == "d-1"  # the charger's hot path does not look
    with pytest.raises(FrameError) as refused:
        parse_frame(raw, unique_keys=True)
    assert (refused.value.unique_id, refused.value.limit) == ("d-1", "duplicate_json_keys")


@pytest.mark.parametrize(
    "raw",
    [
        '[2,"d-1","DataTransfer",{"vendorId" : "v","data":"a\\":b"}]',
        '[3,"d-1",{"currentTime":"2026-12-01T00:00:00Z","interval":300,"status":"Accepted"}]',
    ],
)
def test_a_frame_without_a_repeated_key_is_taken_however_it_is_spaced(raw: str) -> None:
    assert parse_frame(raw, unique_keys=True).payload == parse_frame(raw).payload


def test_the_same_key_in_sibling_objects_is_no_repetition() -> None:
    raw = '[2,"m","MeterValues",{"connectorId":1,"meterValue":[{"a":1},{"a":2}]}]'
    assert parse_frame(raw, unique_keys=True).payload == {
        "connectorId": 1,
        "meterValue": [{"a": 1}, {"a": 2}],
    }


@pytest.mark.parametrize(
    ("version", "code"), [("1.6", "FormationViolation"), ("2.0.1", "FormatViolation")]
)
async def test_a_backend_frame_repeating_a_key_gets_a_callerror_and_never_reaches_the_charger(
    start_proxy: StartProxy, connect_charger: ConnectCharger, version: str, code: str
) -> None:
    proxy = await start_proxy(inbound_backends=TRUSTED)
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    if version == "1.6":
        bad = '[2,"d-1","ChangeAvailability",{"connectorId":1,"type":"Operative","type":"Inoperative"}]'
        good = '[2,"ok-1","ChangeAvailability",{"connectorId":1,"type":"Operative"}]'
    else:
        bad = (
            '[2,"d-1","ChangeAvailability",{"operationalStatus":"Operative",'
            '"operationalStatus":"Inoperative"}]'
        )
        good = '[2,"ok-1","ChangeAvailability",{"operationalStatus":"Operative"}]'
    async with await backend(proxy, TOKEN, version=version) as ws:
        await ws.send(bad)
        answer = await answer_to(ws, "d-1")
        assert answer[:3] == [4, "d-1", code], answer
        assert "repeats the key 'type'" in answer[3] or "'operationalStatus'" in answer[3]
        await ws.send(good)
        assert (await answer_to(ws, "ok-1"))[0] == 3
    assert [action for action, _ in charger.received] == ["ChangeAvailability"]
    metrics = proxy.app[METRICS]
    assert metrics.value("ocpp_proxy_limit_hits_total", limit="duplicate_json_keys") == 1


async def test_strict_mode_refuses_a_charger_frame_repeating_a_key(
    start_csms: Any, start_proxy: StartProxy
) -> None:
    csms = await start_csms("energy_co")
    for strict in (False, True):
        proxy = await start_proxy(ocpp_services=[service(csms)], strict_charger_validation=strict)
        async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
            await ws.send('[2,"h-1","Heartbeat",{}]')
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "h-1"]
            await ws.send('[2,"a-1","Authorize",{"idTag":"A","idTag":"B"}]')
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if strict:
            assert answer[:3] == [4, "a-1", "FormationViolation"], answer
        else:
            assert answer[:2] == [3, "a-1"], answer  # forwarded as before: real chargers' quirks
        metrics = proxy.app[METRICS]
        hits = metrics.value("ocpp_proxy_limit_hits_total", limit="duplicate_json_keys")
        assert hits == (1 if strict else 0)
    assert [c.payload["idTag"] for c in csms.calls("Authorize")] == ["B"]


# -- 2. failed logins hold no connection slot --------------------------------------------------


def _session_from(address: str) -> aiohttp.ClientSession:
    """An HTTP client bound to ``address`` (the whole of 127.0.0.0/8 is loopback)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def _charger_login(session: aiohttp.ClientSession, url: str, password: str) -> int:
    """The HTTP status of a charger's handshake (101 when it opened; then it is closed)."""
    user = url.rsplit("/", 1)[1]
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        ws = await session.ws_connect(
            url, protocols=("ocpp1.6",), headers={"Authorization": f"Basic {basic}"}
        )
    except aiohttp.WSServerHandshakeError as err:
        return err.status
    await ws.close()
    return 101


async def test_failed_logins_hold_no_slot_and_are_answered_at_once(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(chargers=CHARGERS, max_connections=3, max_connections_per_address=2)
    throttle = proxy.app[THROTTLE]
    throttle.threshold, throttle.first_delay, throttle.max_delay = 1, 30.0, 30.0
    url = proxy.charger_url()
    home = aiohttp.ClientSession()
    sessions = [_session_from(f"127.0.0.{n}") for n in (2, 3, 4)]
    try:
        assert await _charger_login(home, url, PASSWORD) == 101  # known at its address
        # Nine guesses at once from three addresses; each used to wait out its delay (30 s)
        # holding a slot, so that the caps were full.
        guesses = [_charger_login(s, url, "guess") for s in sessions for _ in range(3)]
        answers = await asyncio.wait_for(asyncio.gather(*guesses), 5)
        assert set(answers) <= {401, 429} and 401 in answers and 429 in answers, answers
        # The real charger is let in at once, below the caps.
        assert await asyncio.wait_for(_charger_login(home, url, PASSWORD), 5) == 101
    finally:
        await home.close()
        for session in sessions:
            await session.close()
    # The server lets go of each connection as it sees it close: every slot comes back. The
    # limiter has no event to wait on, so its count is read until it is 0 (bounded).
    limiter = proxy.app[LIMITER]
    async with asyncio.timeout(5):
        while limiter.total:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_guesses_from_elsewhere_lock_the_id_but_not_the_charger_at_home(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(chargers=CHARGERS)
    throttle = proxy.app[THROTTLE]
    throttle.threshold = 2
    url = proxy.charger_url()
    home = aiohttp.ClientSession()
    sessions = {n: _session_from(f"127.0.0.{n}") for n in (2, 3, 4, 5)}
    try:
        assert await _charger_login(home, url, PASSWORD) == 101  # its home address from now on
        # One guess from each of three addresses: no address is past the threshold...
        assert [await _charger_login(sessions[n], url, "guess") for n in (2, 3, 4)] == [401] * 3
        # ... but the id is: from a fourth address even its right password is not looked at,
        assert await _charger_login(sessions[5], url, PASSWORD) == 429
        # while the charger at its home address gets in.
        assert await _charger_login(home, url, PASSWORD) == 101
    finally:
        await home.close()
        for session in sessions.values():
            await session.close()


async def test_the_charger_at_home_still_gets_in_after_a_restart(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(chargers=CHARGERS)
    async with aiohttp.ClientSession() as home:
        assert await _charger_login(home, proxy.charger_url(), PASSWORD) == 101
    await proxy.stop()
    again = await start_proxy(chargers=CHARGERS)
    again.app[THROTTLE].threshold = 0  # every guess locks the id at once
    async with (
        aiohttp.ClientSession() as home,
        _session_from("127.0.0.2") as guesser,
        _session_from("127.0.0.3") as elsewhere,
    ):
        url = again.charger_url()
        assert await _charger_login(guesser, url, "guess") == 401
        assert await _charger_login(elsewhere, url, PASSWORD) == 429  # the id is locked
        assert await _charger_login(home, url, PASSWORD) == 101  # but its home was kept


# -- 6. the API's throttle -------------------------------------------------------------------


async def test_api_token_guesses_lock_the_address_out(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(api_token=API_TOKEN, api_public_read=False)
    throttle = proxy.app[THROTTLE]
    now = [5000.0]
    throttle.clock = lambda: now[0]
    url = f"http://127.0.0.1:{proxy.port}/api/v1/status"

    async def get(session: aiohttp.ClientSession, token: str) -> tuple[int, str | None]:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status, response.headers.get("Retry-After")

    async with aiohttp.ClientSession() as session, _session_from("127.0.0.2") as other:
        guesses = [await get(session, f"guess-{n:012d}") for n in range(6)]
        assert guesses == [(401, None)] * 6
        assert await get(session, API_TOKEN) == (429, "1")  # the token is not even compared
        assert await get(other, API_TOKEN) == (200, None)  # other addresses are not slowed
        now[0] += 1.5
        assert await get(session, API_TOKEN) == (200, None)
    metrics = proxy.app[METRICS]
    assert metrics.value("ocpp_proxy_limit_hits_total", limit="api_auth_throttle") == 1
    assert metrics.value("ocpp_proxy_auth_failures_total", peer="api") == 6


# -- 7. charge point ids, and open mode ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("%2E%2E", "'..'"),
        ("%2E", "'.'"),
        ("a%2Fb", "'/'"),
        ("x" * 49, "longer than 48"),
        ("CP%0A1", "not printable"),
    ],
)
async def test_an_invalid_charge_point_id_is_refused_before_anything_uses_it(
    start_csms: Any, start_proxy: StartProxy, path: str, reason: str
) -> None:
    csms = await start_csms("energy_co")
    proxy = await start_proxy(ocpp_services=[service(csms)], inbound_backends=BACKENDS)
    async with aiohttp.ClientSession() as session:
        for url in (
            URL(f"http://127.0.0.1:{proxy.port}/charger/{path}", encoded=True),
            URL(
                f"http://127.0.0.1:{proxy.port}/backend?id=fleet&token={TOKEN}"
                f"&charge_point_id={path}",
                encoded=True,
            ),
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, protocols=("ocpp1.6",))
            assert refused.value.status == 400, url
            async with session.get(url) as response:
                assert reason in await response.text()
    assert [hub.id for hub in proxy.registry] == []
    assert csms.connections == {} and csms.calls() == []


async def test_an_id_is_percent_decoded_once(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy()
    charger = await connect_charger(proxy, "%252E%252E")  # "%2E%2E" once decoded: no ".."
    await charger.boot()
    assert [hub.id for hub in proxy.registry] == ["%2E%2E"]


async def test_open_mode_lets_an_online_id_be_taken_only_from_its_address_or_when_silent(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(api_token=API_TOKEN)
    first = await connect_charger(proxy)
    await first.boot()
    url = proxy.charger_url()
    async with _session_from("127.0.0.2") as other:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await other.ws_connect(url, protocols=("ocpp1.6",))
        assert refused.value.status == 409
        assert (await first.heartbeat()) is not None  # the first connection is untouched
        # Silent for longer than the ping timeout (as the clock would show it): replaced.
        hub = proxy.hub()
        assert hub.charger is not None
        hub.charger.connected_since -= 3600
        hub.last_message_at = (hub.last_message_at or 0) - 3600
        ws = await other.ws_connect(url, protocols=("ocpp1.6",))
        await first.wait_closed()
        assert hub.charger is not None and hub.charger.remote == "127.0.0.2"
        await ws.close()
    # From the same address (a charger reconnecting over a half-open TCP connection): replaced.
    again = await connect_charger(proxy)
    again2 = await connect_charger(proxy)
    await again.wait_closed()
    assert (await again2.boot()).status == "Accepted"
    replacements = (await proxy.get_json("/status"))["replacements"]
    assert [(r["charge_point_id"], r["old_remote"], r["new_remote"]) for r in replacements] == [
        ("CP_1", "127.0.0.1", "127.0.0.2"),
        ("CP_1", "127.0.0.1", "127.0.0.1"),
    ]
    assert replacements[0]["silent_s"] >= 3600


# -- 5. charger passwords sent over OCPP -----------------------------------------------------

SECRET = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
HOME_SECRET = "homeowner-chosen-key-42"


def _commands(version: str, value: str, *, unique: str) -> tuple[str, str, dict[str, Any]]:
    """A backend's command setting the charger's password, its read-back, and the
    homeowner's API body doing the same (OCPP 1.6 security whitepaper §2; 2.0.1 A01)."""
    if version == "1.6":
        set_it = [
            2,
            f"set-{unique}",
            "ChangeConfiguration",
            {"key": "AuthorizationKey", "value": value},
        ]
        get_it = [2, f"get-{unique}", "GetConfiguration", {"key": ["AuthorizationKey"]}]
        home = {"key": "AuthorizationKey", "value": HOME_SECRET}
    else:
        target = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
        set_it = [
            2,
            f"set-{unique}",
            "SetVariables",
            {"setVariableData": [{"attributeValue": value, **target}]},
        ]
        get_it = [2, f"get-{unique}", "GetVariables", {"getVariableData": [target]}]
        home = {"key": "SecurityCtrlr.BasicAuthPassword", "value": HOME_SECRET}
    return json.dumps(set_it), json.dumps(get_it), home


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_password_set_over_ocpp_is_never_written_or_served_in_clear(
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    caplog: pytest.LogCaptureFixture,
    version: str,
) -> None:
    proxy = await start_proxy(inbound_backends=TRUSTED, api_token=API_TOKEN)
    # As cli.main installs it on the log handlers.
    caplog.handler.addFilter(RedactingFilter(configured_secrets(proxy.app[CONFIG])))
    caplog.set_level(logging.DEBUG)
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    if version == "1.6":
        charger.configuration["AuthorizationKey"] = ""
    else:
        charger.variables["SecurityCtrlr", "BasicAuthPassword"] = ""
    set_it, get_it, home = _commands(version, SECRET, unique="1")
    async with await backend(proxy, TOKEN, version=version) as ws:
        await ws.send(set_it)
        assert (await answer_to(ws, "set-1"))[0] == 3
        await ws.send(get_it)  # the charger's answer holds it too
        assert SECRET in json.dumps(await answer_to(ws, "get-1"))  # the backend asked for it
        # A malformed copy is refused and logged with its text.
        await ws.send(set_it[:-2] + ', "x": 1, "x": 2}]')
        assert (await answer_to(ws, "set-1"))[0] == 4
    status, answer = await proxy.post_json(
        "/api/v1/chargers/CP_1/commands/change_configuration", home
    )
    assert status == 200 and answer["accepted"], answer
    keys = {"keys": [home["key"]]}
    status, read_back = await proxy.post_json(
        "/api/v1/chargers/CP_1/commands/get_configuration", keys
    )
    assert status == 200, read_back
    # The charger got the real values.
    if version == "1.6":
        assert charger.configuration["AuthorizationKey"] == HOME_SECRET
    else:
        assert charger.variables["SecurityCtrlr", "BasicAuthPassword"] == HOME_SECRET
    assert SECRET in json.dumps(charger.received)
    store = proxy.hub().store
    await store.flush()
    served = json.dumps(
        [
            await proxy.get_json("/api/v1/audit?limit=100"),
            await proxy.get_json("/api/v1/chargers/CP_1/messages?limit=1000"),
            await proxy.get_json("/status"),
            answer,
            read_back,
        ]
    )
    data_dir = Path(proxy.app[CONFIG].data_dir)
    files = await asyncio.to_thread(lambda: list(data_dir.glob("ocpp-proxy.sqlite3*")))
    stored = b"".join([await asyncio.to_thread(path.read_bytes) for path in files])
    logged = caplog.text
    for secret in (SECRET, HOME_SECRET):
        assert secret not in served, secret
        assert secret.encode() not in stored, secret
        assert secret not in logged, secret
    assert r"\"***\"" in served  # masked (in a frame's text), not missing
    assert "malformed frame" in logged


# -- 3. what a backend can make the proxy keep -----------------------------------------------


async def test_the_message_log_is_bounded_in_bytes_and_cuts_large_frames(tmp_path: Path) -> None:
    bound = 200_000
    store = await Store.open(
        tmp_path / "db.sqlite3", message_log_max_rows=10**6, message_log_max_bytes=bound
    )
    try:
        big = json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 500_000}])
        for n in range(300):  # 300 frames of 500 kB: 150 MB offered
            store.log_frame(
                "CP_1",
                peer="fleet",
                direction="in",
                message_type=2,
                action="DataTransfer",
                unique_id=f"big-{n}",
                frame=big,
                at=1000.0 + n,
            )
            if n % 50 == 0:
                await store.flush()
        rows = await store.messages("CP_1", limit=10**6)
        kept = sum(len(row.frame) for row in rows)
        assert kept <= bound, kept
        assert rows[0].unique_id == "big-299"  # the newest are kept
        assert rows[0].size == len(big)  # the size is the whole frame's
        assert rows[0].frame.startswith(big[:4096])
        assert rows[0].frame.endswith(f"[cut: {len(big)} bytes]")
    finally:
        await store.close()
    size_on_disk = (tmp_path / "db.sqlite3").stat().st_size
    assert size_on_disk < 10 * bound, size_on_disk


async def test_the_audit_log_is_pruned_by_age(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3", audit_log_days=30)
    try:
        day = 86_400.0
        for age_days in (40, 31, 29, 1):
            await store.audit(
                "CP_1",
                actor="fleet",
                action="Reset",
                summary=f"{age_days} days old",
                decision="refused",
                rule="read_only",
                reason=None,
                answer=None,
                at=100 * day - age_days * day,
            )
        await store.prune_message_log(100 * day)
        kept = [entry.summary for entry in await store.audit_entries("CP_1")]
        assert kept == ["1 days old", "29 days old"]
    finally:
        await store.close()


async def test_an_inbound_backend_joins_only_a_charge_point_that_exists(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(
        inbound_backends=BACKENDS, chargers=[*CHARGERS, {"id": "CP_2", "password": "pw-2"}]
    )
    base = f"{proxy.base}/backend?id=fleet&token={TOKEN}&charge_point_id="
    for name in ("NEVER_SEEN_1", "NEVER_SEEN_2"):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(base + name, subprotocols=["ocpp1.6"], open_timeout=5)
        assert refused.value.response.status_code == 404
    assert [hub.id for hub in proxy.registry] == []
    # Configured: in `chargers`, or `charge_point_id` (the default CP_1).
    for name in ("CP_1", "CP_2"):
        async with websockets.connect(base + name, subprotocols=["ocpp1.6"], open_timeout=5):
            pass
    assert sorted(hub.id for hub in proxy.registry) == ["CP_1", "CP_2"]


async def test_a_charge_point_seen_before_may_be_joined_and_idle_hubs_are_freed(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(inbound_backends=BACKENDS)
    registry = proxy.registry
    now = [0.0]
    registry.clock = lambda: now[0]
    charger = await connect_charger(proxy, "CP_9")
    await charger.boot()
    base = f"{proxy.base}/backend?id=fleet&token={TOKEN}&charge_point_id="
    async with websockets.connect(base + "CP_9", subprotocols=["ocpp1.6"], open_timeout=5):
        assert await registry.free_idle() == []  # busy: never freed
    await charger.close()
    hub = proxy.hub("CP_9")
    await registry.changes.wait_for(
        lambda: hub.charger is None and not any(link.connected for link in hub.links.values()),
        timeout_s=5,
    )
    assert await registry.free_idle() == []  # idle from now on
    now[0] += IDLE_HUB_S - 1
    assert await registry.free_idle() == []
    now[0] += 1
    assert await registry.free_idle() == ["CP_9"]
    assert registry.get("CP_9") is None
    # The homeowner still sees it as a charger that is offline, with its message log.
    status, answer = await proxy.post_json("/api/v1/chargers/CP_9/commands/reset", {"type": "Soft"})
    assert (status, answer.get("reason")) == (409, "charger_offline")
    assert (await proxy.get_json("/api/v1/chargers/CP_9/messages"))["messages"]
    # Seen before: a backend may still join it (the hub comes back), and so may the charger.
    async with websockets.connect(base + "CP_9", subprotocols=["ocpp1.6"], open_timeout=5):
        again = await connect_charger(proxy, "CP_9")
        assert (await again.boot()).status == "Accepted"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('[2,"1","ChangeConfiguration",{"key":"HeartbeatInterval","value":"300"}]', True),
        ('[3,"1",{"configurationKey":[{"key":"GetConfigurationMaxKeys","value":"20"}]}]', True),
        ('[2,"1","MeterValues",{"meterValue":[{"sampledValue":[{"value":"7"}]}]}]', True),
        ('[2,"1","ChangeConfiguration",{"value":"s3cr3t","key":"AuthorizationKey"}]', False),
        ('[2,"1","ChangeConfiguration",{"key":"WifiPassword","value":"s3cr3t"}]', False),
        (
            '[2,"1","NotifyReport",{"reportData":[{"component":{"name":"SecurityCtrlr"},'
            '"variable":{"name":"BasicAuthPassword"},'
            '"variableAttribute":[{"type":"Actual","value":"s3cr3t"}]}]}]',
            False,
        ),
        ('{"key":"AuthorizationKey","value":"s3cr', False),  # a text cut inside the entry
    ],
)
def test_configuration_secrets_are_masked_and_nothing_else(text: str, kept: bool) -> None:
    masked = mask_config_secrets(text)
    if kept:
        assert masked == text
    else:
        assert "s3cr" not in masked and "***" in masked, masked
