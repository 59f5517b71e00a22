"""Issue 16: what an attacker on the LAN or a hostile backend could still do, refused.

Duplicate JSON keys, failed logins holding connection slots, logs filling the disk, client
certificates not tied to the charge point, charger passwords stored in clear, the API's
throttle and weak secrets, and charge point ids that are no identity.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from ocpp_proxy.protocol.frames import FrameError, parse_frame
from ocpp_proxy.server.keys import METRICS
from tests.conftest import ConnectCharger, StartProxy, service
from tests.test_security import BACKENDS, TOKEN, TRUSTED, answer_to, backend

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
    ],
)
def test_parse_refuses_a_repeated_key_at_any_depth_when_asked(raw: str) -> None:
    assert parse_frame(raw).unique_id == "d-1"  # the charger's hot path does not look
    with pytest.raises(FrameError) as refused:
        parse_frame(raw, unique_keys=True)
    assert (refused.value.unique_id, refused.value.limit) == ("d-1", "duplicate_json_keys")


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


_ = BACKENDS
