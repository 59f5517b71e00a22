"""Fuzzing the proxy: arbitrary and near-valid frames from a charger and from a backend.

One proxy serves the whole module, on an event loop in a background thread (the ``rig``),
beside a minimal raw CSMS (``websockets``; answers every CALL at once), a charger that
answers every command (the target of the backend's fuzz), and a simulated charger running a
session through it all. Hypothesis drives many cases through one WebSocket per test, from the
test thread (``websockets.sync``): after each fuzz frame a probe (a valid CALL) must be
answered, so each case is finished before the next starts. Every frame the proxy sends back
must be well-formed OCPP-J, no ERROR may be logged, and the session beside must come through
intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ocpp_proxy.config import parse_config
from ocpp_proxy.server.app import create_app
from ocpp_proxy.simulator.charger import SimulatedCharger
from tests.fuzz_frames import SENTINEL_PREFIX, fuzz_frame, is_call, random_text, well_formed

EXAMPLES = 150
MAX_FRAME_BYTES = 65536
TIMEOUT_S = 10.0
SIM_ID, FUZZ_ID, TARGET_ID = "CP_SIM", "CP_FUZZ", "CP_TARGET"
BACKEND_TOKEN = "fuzz-backend-secret"
_ID = re.compile(r'\s*\[\s*[0-9]+\s*,\s*"((?:[^"\\]|\\.)*)"')

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


class _Errors(logging.Handler):
    """Keeps every ERROR (or worse) record of the ``ocpp_proxy`` loggers."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _answer(action: str, transaction_ids: list[int], counter: itertools.count) -> dict[str, Any]:
    if action == "BootNotification":
        return {"status": "Accepted", "currentTime": "2025-01-01T00:00:00Z", "interval": 300}
    if action == "Authorize":
        return {"idTagInfo": {"status": "Accepted"}}
    if action == "StartTransaction":
        transaction_ids.append(next(counter))
        return {"transactionId": transaction_ids[-1], "idTagInfo": {"status": "Accepted"}}
    if action == "Heartbeat":
        return {"currentTime": "2025-01-01T00:00:00Z"}
    return {}


@dataclass
class Rig:
    """What runs on the background loop, and what it saw."""

    loop: asyncio.AbstractEventLoop
    port: int = 0
    #: (charge point id, raw frame) the CSMS received.
    csms_received: list[tuple[str, str]] = field(default_factory=list)
    #: The frames the CSMS could not parse (the proxy forwarded them: they must parse).
    csms_unparsed: list[str] = field(default_factory=list)
    #: The transaction ids the CSMS gave, per charge point id.
    csms_transaction_ids: dict[str, list[int]] = field(default_factory=dict)
    csms_counter: itertools.count = field(default_factory=lambda: itertools.count(1000))
    #: Frames the command target received from the proxy.
    target_received: list[str] = field(default_factory=list)
    #: Frames the simulated charger sent, and its outcome.
    sim_sent: list[str] = field(default_factory=list)
    sim_done: Future[Any] = field(default_factory=Future)
    #: The ERROR records of the ``ocpp_proxy`` loggers.
    errors: _Errors = field(default_factory=_Errors)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S * 3)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


async def _csms(rig: Rig, ws: ServerConnection) -> None:
    charge_point_id = (ws.request.path if ws.request else "/").rsplit("/", 1)[-1]
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            rig.csms_received.append((charge_point_id, str(text)))
            try:
                frame = json.loads(text)
            except (ValueError, RecursionError):
                rig.csms_unparsed.append(str(text))
                continue
            if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
                given_ids = rig.csms_transaction_ids.setdefault(charge_point_id, [])
                answer = _answer(str(frame[2]), given_ids, rig.csms_counter)
                await ws.send(json.dumps([3, frame[1], answer]))


async def _target(rig: Rig, url: str) -> None:
    """A charger that answers every command with an empty CALLRESULT."""
    from websockets.asyncio.client import connect as connect_async

    async with connect_async(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                rig.target_received.append(str(text))
                frame = json.loads(text)
                if frame[0] == 2:
                    await ws.send(json.dumps([3, frame[1], {}]))


async def _simulated_session(rig: Rig) -> list[int | str]:
    """Boot, start, meter values spread over the fuzzing, stop: one slow session."""
    charger = await SimulatedCharger.connect(
        rig.url(f"/charger/{SIM_ID}"), SIM_ID, log=lambda _line: None, response_timeout=10
    )
    connection = charger._peer._connection  # record what the charger puts on the wire
    send = connection.send

    async def recording_send(message: Any, *args: Any, **kwargs: Any) -> Any:
        rig.sim_sent.append(str(message))
        return await send(message, *args, **kwargs)

    connection.send = recording_send  # type: ignore[method-assign]
    try:
        boot = await charger.boot()
        assert boot.status == "Accepted"
        await charger.status(1, "Available")
        await charger.authorize("SIMTAG01")
        tx = await charger.start_transaction(1, "SIMTAG01", 1000)
        for sample in range(1, 21):
            await asyncio.sleep(0.25)
            await charger.meter_values(1, tx, 1000 + sample * 100, 7400)
        await charger.stop_transaction(tx, 3000, reason="Local")
        await charger.status(1, "Available")
        return [tx]
    finally:
        await charger.close()


async def _start(rig: Rig, data_dir: Path, stack: contextlib.AsyncExitStack) -> None:
    csms = await stack.enter_async_context(
        serve(lambda ws: _csms(rig, ws), "127.0.0.1", 0, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    )
    csms_port = csms.sockets[0].getsockname()[1]
    config = parse_config(
        {
            "data_dir": str(data_dir),
            "response_timeout": 2,
            "drain_timeout": 1,
            "max_frame_bytes": MAX_FRAME_BYTES,
            "api_public_read": True,
            "ocpp_services": [
                {"id": "csms", "url": f"ws://127.0.0.1:{csms_port}/ocpp", "version": "1.6"}
            ],
            "inbound_backends": [{"id": "fleet", "token": BACKEND_TOKEN}],
        }
    )
    runner = web.AppRunner(create_app(config), shutdown_timeout=1)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rig.port = runner.addresses[0][1]
    target = asyncio.ensure_future(_target(rig, rig.url(f"/charger/{TARGET_ID}")))
    stack.callback(target.cancel)
    session = asyncio.ensure_future(_simulated_session(rig))
    stack.callback(session.cancel)

    def settle(task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            rig.sim_done.cancel()
        elif task.exception() is not None:
            rig.sim_done.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            rig.sim_done.set_result(task.result())

    session.add_done_callback(settle)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-rig", daemon=True)
    thread.start()
    rig = Rig(loop)
    logger = logging.getLogger("ocpp_proxy")
    logger.addHandler(rig.errors)
    stack = contextlib.AsyncExitStack()
    try:
        rig.run(_start(rig, tmp_path_factory.mktemp("fuzz") / "data", stack))
        yield rig
    finally:
        with contextlib.suppress(Exception):
            rig.run(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT_S)
        loop.close()
        logger.removeHandler(rig.errors)


def _assert_no_errors(rig: Rig) -> None:
    records = rig.errors.records
    assert not records, "\n".join(
        f"{r.name} {r.levelname}: {r.getMessage()[:300]}\n{r.exc_text or ''}" for r in records
    )


class Probe:
    """One WebSocket to the proxy: send a fuzz frame, then a probe CALL; gather the answers."""

    def __init__(self, ws: ClientConnection, probe_action: str) -> None:
        self.ws = ws
        self.probe_action = probe_action
        self.count = 0

    def case(self, text: str) -> list[list[Any]]:
        """Send ``text`` and a probe; return the frames received before the probe's answer."""
        self.count += 1
        sentinel = f"{SENTINEL_PREFIX}{self.count}"
        self.ws.send(text)
        self.ws.send(json.dumps([2, sentinel, self.probe_action, {}]))
        received: list[list[Any]] = []
        while True:
            frame = well_formed(str(self.ws.recv(timeout=TIMEOUT_S)))
            if frame[1] == sentinel:
                assert frame[0] == 3, f"the probe after {text!r:.200} got {frame}"
                return received
            received.append(frame)


def _check_answers(text: str, answers: list[list[Any]]) -> None:
    # At most one answer per fuzz frame, and under the unique id the frame carried.
    assert len(answers) <= 1, f"{text!r:.200} got {answers}"
    # A well-formed CALL is answered, whatever its action and payload.
    if is_call(text, MAX_FRAME_BYTES):
        assert len(answers) == 1, f"{text!r:.200} got no answer"
    for answer in answers:
        assert answer[0] in (3, 4), answer
        assert answer[1] == _unique_id_of(text), (text[:200], answer)


def _unique_id_of(text: str) -> str | None:
    """The unique id a frame carries, as far as it can be read (parsed, or from its head)."""
    with contextlib.suppress(ValueError, RecursionError):
        frame = json.loads(text)
        if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str):
            return frame[1]
    match = _ID.match(text)
    return None if match is None else json.loads(f'"{match.group(1)}"')


fuzz_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=200),  # a text frame is UTF-8: no surrogates
    st.randoms(use_true_random=False).map(lambda rng: random_text(rng, 200)),
)


def _case(direction: str) -> st.SearchStrategy[str]:
    near = st.tuples(st.randoms(use_true_random=False), st.integers(0, 10**6)).map(
        lambda args: fuzz_frame(args[0], args[1], direction)
    )
    return st.one_of(fuzz_text, near, near, near)


def test_fuzz_from_a_charger(rig: Rig) -> None:
    with connect(rig.url(f"/charger/{FUZZ_ID}"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        probe = Probe(ws, "Heartbeat")

        @FUZZ_SETTINGS
        @given(text=_case("charger"))
        def fuzz(text: str) -> None:
            _check_answers(text, probe.case(text))

        fuzz()
        # The link is still up: a valid Heartbeat still gets its answer from the CSMS.
        ws.send('[2,"after","Heartbeat",{}]')
        assert well_formed(str(ws.recv(timeout=TIMEOUT_S))) == [
            3,
            "after",
            {"currentTime": "2025-01-01T00:00:00Z"},
        ]
    assert not rig.csms_unparsed, rig.csms_unparsed[:3]
    _assert_no_errors(rig)


def test_fuzz_from_a_201_charger(rig: Rig) -> None:
    """OCPP 2.0.1 (TransactionEvent, unitOfMeasure...): no 2.0.1 service, so the proxy answers."""
    with connect(rig.url("/charger/CP_FUZZ_201"), subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        probe = Probe(ws, "Heartbeat")

        @FUZZ_SETTINGS
        @given(text=_case("charger201"))
        def fuzz(text: str) -> None:
            _check_answers(text, probe.case(text))

        fuzz()
        ws.send('[2,"after","Heartbeat",{}]')
        assert well_formed(str(ws.recv(timeout=TIMEOUT_S)))[:2] == [3, "after"]
    _assert_no_errors(rig)


def test_fuzz_from_a_backend(rig: Rig) -> None:
    url = rig.url(f"/backend?id=fleet&charge_point_id={TARGET_ID}&token={BACKEND_TOKEN}")
    with connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        probe = Probe(ws, "GetConfiguration")

        @FUZZ_SETTINGS
        @given(text=_case("backend"))
        def fuzz(text: str) -> None:
            _check_answers(text, probe.case(text))

        fuzz()
        ws.send('[2,"after","GetConfiguration",{}]')
        assert well_formed(str(ws.recv(timeout=TIMEOUT_S))) == [3, "after", {}]
    # Everything the proxy sent the charger was well-formed.
    for text in list(rig.target_received):
        well_formed(text)
    _assert_no_errors(rig)


def test_session_beside_the_fuzzing_is_intact(rig: Rig) -> None:
    [tx] = rig.sim_done.result(timeout=30)  # the proxy's own transaction id
    sent = [json.loads(t) for t in rig.sim_sent if json.loads(t)[0] == 2]
    received = [json.loads(t) for cp, t in rig.csms_received if cp == SIM_ID]
    received = [f for f in received if f[0] == 2]
    actions = [f[2] for f in sent]
    assert actions[:5] == [
        "BootNotification",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "MeterValues",
    ]
    assert actions.count("MeterValues") == 20 and actions[-2:] == [
        "StopTransaction",
        "StatusNotification",
    ]
    # Same CALLs, in the same order, same payloads: only the transaction id is the CSMS's own.
    [csms_tx] = rig.csms_transaction_ids[SIM_ID]
    assert len(received) == len(sent)
    for ours, theirs in zip(sent, received, strict=True):
        assert theirs[2] == ours[2]
        expected = dict(ours[3])
        if "transactionId" in expected:
            assert expected["transactionId"] == tx
            expected["transactionId"] = csms_tx
        assert theirs[3] == expected
    _assert_no_errors(rig)


@pytest.mark.parametrize(
    ("path", "subprotocol", "probe_action", "direction"),
    [
        (f"/charger/{FUZZ_ID}", "ocpp1.6", "Heartbeat", "charger"),
        ("/charger/CP_FUZZ_201", "ocpp2.0.1", "Heartbeat", "charger201"),
        (
            f"/backend?id=fleet&charge_point_id={TARGET_ID}&token={BACKEND_TOKEN}",
            "ocpp1.6",
            "GetConfiguration",
            "backend",
        ),
    ],
    ids=["charger", "charger-2.0.1", "backend"],
)
def test_one_seeded_batch(
    rig: Rig, path: str, subprotocol: str, probe_action: str, direction: str
) -> None:
    """Seeded cases as ``benchmarks/fuzz.py`` runs them: quick, reproducible.

    ``FUZZ_CASES`` (environment) sets how many (default 300), ``FUZZ_SEED`` the seed (7).
    """
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "7")))
    with connect(rig.url(path), subprotocols=[subprotocol]) as ws:  # type: ignore[list-item]
        probe = Probe(ws, probe_action)
        for serial in range(int(os.environ.get("FUZZ_CASES", "300"))):
            text = fuzz_frame(rng, serial, direction)
            _check_answers(text, probe.case(text))
    _assert_no_errors(rig)


_DEEP = "[" * 5000 + "]" * 5000
_MV = '{{"connectorId":1,"transactionId":1,"meterValue":[{{"timestamp":"2025-01-01T00:00:00Z","sampledValue":{}}}]}}'


@pytest.mark.parametrize(
    ("side", "frame", "answer_type"),
    [
        # The JSON parser's RecursionError escaped parse_frame.
        ("charger", f'[2,"r1","Heartbeat",{{"a":{_DEEP}}}]', 4),
        ("backend", f'[2,"r1","GetConfiguration",{{"a":{_DEEP}}}]', 4),
        # int() of a message type id past 4300 digits raised ValueError.
        ("charger", "[" + "9" * 5000 + ',"r2","Heartbeat",{}]', 4),
        ("charger", '[18446744073709551617,"r3","Heartbeat",{}]', 4),
        # Integers past 64 bits went to SQLite (OverflowError): the charger got no answer.
        (
            "charger",
            '[2,"r4","StartTransaction",{"connectorId":' + "1" * 30 + ',"idTag":"T",'
            '"meterStart":' + "9" * 400 + ',"timestamp":"2025-01-01T00:00:00Z"}]',
            3,
        ),
        (
            "charger",
            '[2,"r5","StopTransaction",{"transactionId":-' + "8" * 21 + ","
            '"meterStop":1,"timestamp":"2025-01-01T00:00:00Z"}]',
            3,
        ),
        # Meter values of the wrong shape or type broke recording the samples.
        ("charger", '[2,"r6","MeterValues",' + _MV.format("5") + "]", 3),
        ("charger", '[2,"r7","MeterValues",' + _MV.format('[{"value":"1","unit":{}}]') + "]", 3),
        (
            "charger",
            '[2,"r8","MeterValues",' + _MV.format('[{"value":' + "1" * 400 + "}]") + "]",
            3,
        ),
        ("charger", '[2,"r9","MeterValues",' + _MV.format('[{"value":"NaN"}]') + "]", 3),
        # A lone surrogate (as a JSON escape) could not be encoded: not in the CALLERROR, not
        # in SQLite (the audit log); the peer got no answer.
        ("backend", '["x","r10\\ud800",{}]', 4),
        ("backend", '[2,"r11","\\ud800",{}]', 4),
        (
            "charger",
            '[2,"r12","BootNotification",{"chargePointVendor":"\\udc00","chargePointModel":"M"}]',
            4,
        ),
        # An action without a schema reaches the arbiter unchecked.
        ("backend", '[2,"r13","VendorThing",{"csChargingProfiles":"x"}]', 4),
        # 2.0.1 TransactionEvent with a transactionInfo that is no object.
        (
            "charger201",
            '[2,"r14","TransactionEvent",{"eventType":"Started","timestamp":'
            '"2025-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":"x"}]',
            3,
        ),
    ],
)
def test_frames_that_broke_the_proxy(rig: Rig, side: str, frame: str, answer_type: int) -> None:
    """Found by the fuzzing: each is answered once (or refused) and nothing is logged as ERROR."""
    path, subprotocol, probe_action = {
        "charger": ("/charger/CP_REGRESS", "ocpp1.6", "Heartbeat"),
        "charger201": ("/charger/CP_REGRESS_201", "ocpp2.0.1", "Heartbeat"),
        "backend": (
            f"/backend?id=fleet&charge_point_id={TARGET_ID}&token={BACKEND_TOKEN}",
            "ocpp1.6",
            "GetConfiguration",
        ),
    }[side]
    with connect(rig.url(path), subprotocols=[subprotocol], max_size=None) as ws:  # type: ignore[list-item]
        answers = Probe(ws, probe_action).case(frame)
    assert [a[0] for a in answers] == [answer_type], answers
    assert answers[0][1] == _unique_id_of(frame)
    _assert_no_errors(rig)
