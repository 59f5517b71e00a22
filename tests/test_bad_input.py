"""Bad frames from a charger or a backend: a CALLERROR where a unique id can be read, else
logged and dropped; the peer stays connected and everything else carries on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from ocpp.v16 import call as call16

from tests.conftest import StartProxy, service

BIG = "x" * 5000

# (frame, the CALLERROR code a 1.6 peer gets, or None when nothing can be answered)
CASES_16 = [
    pytest.param('[2,"u1","Heartbeat",{]', "FormationViolation", id="not-json-with-id"),
    pytest.param("hello", None, id="not-json-no-id"),
    pytest.param('{"a": 1}', None, id="not-an-array"),
    pytest.param('[2,"u2","Heartbeat"]', "FormationViolation", id="call-missing-payload"),
    pytest.param('[2,"u3",7,{}]', "FormationViolation", id="action-not-a-string"),
    pytest.param('[2,"u4","Heartbeat",[]]', "FormationViolation", id="payload-not-an-object"),
    pytest.param('[9,"u5","Heartbeat",{}]', "FormationViolation", id="unknown-message-type"),
    pytest.param('[2, 5, "Heartbeat", {}]', None, id="unique-id-not-a-string"),
    pytest.param(
        f'[2,"u6","DataTransfer",{{"vendorId":"{BIG}"}}]', "FormationViolation", id="too-big"
    ),
]


async def _expect_answer(ws: Any, code: str | None) -> None:
    if code is None:
        # Nothing can be answered: the next valid CALL still gets its answer, proving the
        # link stayed up and the bad frame produced no reply.
        await ws.send('[2,"after","Heartbeat",{}]')
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer[:2] == [3, "after"]
    else:
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer[0] == 4 and answer[2] == code, answer
        assert answer[3], "a CALLERROR says what was wrong"


@pytest.mark.parametrize(("frame", "code"), CASES_16)
async def test_bad_frame_from_a_charger(
    start_proxy: StartProxy, frame: str, code: str | None
) -> None:
    proxy = await start_proxy(max_frame_bytes=4096)
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
        await ws.send(frame)
        await _expect_answer(ws, code)
        await ws.send('[2,"still","Heartbeat",{}]')
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "still"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param('[2,"u1","Heartbeat",{]', "FormatViolation", id="not-json-with-id"),
        pytest.param('[7,"u2","Heartbeat",{}]', "MessageTypeNotSupported", id="unknown-type"),
        pytest.param('[2,"u3","Heartbeat"]', "FormatViolation", id="wrong-shape"),
    ],
)
async def test_bad_frame_from_a_201_charger_uses_201_error_codes(
    start_proxy: StartProxy, frame: str, code: str
) -> None:
    proxy = await start_proxy()
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp2.0.1"]) as ws:
        await ws.send(frame)
        await _expect_answer(ws, code)


async def test_malformed_answer_from_the_charger_gives_the_backend_a_callerror(
    start_csms, start_proxy: StartProxy
) -> None:
    from ocpp.exceptions import FormationViolationError

    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
        await a.wait_connected("CP_1")
        asking = asyncio.ensure_future(a.call("CP_1", call16.UnlockConnector(connector_id=1)))
        command = json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(f'[3,"{command[1]}"]')  # a CALLRESULT without its payload
        with pytest.raises(FormationViolationError, match="malformed"):
            await asyncio.wait_for(asking, 5)


@pytest.mark.parametrize(("frame", "code"), CASES_16)
async def test_bad_frame_from_a_backend(
    start_proxy: StartProxy, frame: str, code: str | None
) -> None:
    proxy = await start_proxy(
        max_frame_bytes=4096, inbound_backends=[{"id": "fleet", "token": "fleet-secret"}]
    )
    async with (
        websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as charger,
        websockets.connect(
            f"{proxy.base}/backend?id=fleet&charge_point_id=CP_1",
            subprotocols=["ocpp1.6"],
            additional_headers={"Authorization": "Bearer fleet-secret"},
        ) as backend,
    ):
        await backend.send(frame)
        if code is None:
            # The backend stays connected and its next command reaches the charger.
            await backend.send('[2,"next","UnlockConnector",{"connectorId":1}]')
            command = json.loads(await asyncio.wait_for(charger.recv(), 5))
            assert command[2] == "UnlockConnector"
        else:
            answer = json.loads(await asyncio.wait_for(backend.recv(), 5))
            assert answer[0] == 4 and answer[2] == code
        # The charger's own traffic is untouched: its next CALL reaches the backend (the
        # primary) and the backend's answer reaches the charger.
        await charger.send('[2,"hb","Heartbeat",{}]')
        while (forwarded := json.loads(await asyncio.wait_for(backend.recv(), 5)))[1] != "hb":
            pass
        await backend.send('[3,"hb",{"currentTime":"2030-01-01T00:00:00Z"}]')
        while (answer := json.loads(await asyncio.wait_for(charger.recv(), 5)))[0] != 3:
            pass
        assert answer == [3, "hb", {"currentTime": "2030-01-01T00:00:00Z"}]
        assert forwarded == [2, "hb", "Heartbeat", {}]
