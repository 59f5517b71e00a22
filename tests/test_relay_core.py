"""The relay core under faults: nothing lost, nothing doubled, nothing blocks.

Time is driven by a ManualClock: deadlines, backoff and retries fire when a test advances it,
never by waiting. What the charger received is read from the message log (every frame the
proxy sent it); what each backend received from the ``ocpp`` library CSMS peers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ocpp_proxy.clock import ManualClock
from ocpp_proxy.config import parse_config
from ocpp_proxy.homeassistant.entities import STORE_PROBLEM, proxy_entities
from ocpp_proxy.protocol.frames import CALLRESULT, parse_frame
from ocpp_proxy.protocol.messages import charger_message_rule
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay import sender
from ocpp_proxy.relay.backend_link import BackendLink, Delivery, Direction
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.relay.keeper import STORE_RETRY_S
from ocpp_proxy.store import Store, StoreError
from ocpp_proxy.transport.upstream import BACKOFF_MAX_S
from tests.conftest import ConnectCharger, Proxy, StartProxy, service, tx_ids
from tests.peers import Csms

VERSIONS = ["1.6", "2.0.1"]
TIMEOUT = 2.0  # response_timeout of these tests (s of the ManualClock)


async def turns(predicate: Any, limit: int = 2_000) -> None:
    """Let the event loop run until ``predicate()`` holds (no real time passes for it)."""
    for _ in range(limit):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def reconnect(clock: ManualClock, csms: Csms) -> None:
    """Let the proxy's upstream link to ``csms`` dial again: its wait is on the ManualClock."""
    for _ in range(10):
        if "CP_1" in csms.connections:
            return
        await clock.wait_for_sleepers(1)
        await clock.step(BACKOFF_MAX_S)
        try:
            await csms.wait_until(lambda: "CP_1" in csms.connections, timeout=2)
        except (TimeoutError, AssertionError):
            continue
    assert "CP_1" in csms.connections


async def answers_to_charger(proxy: Proxy) -> Counter[str]:
    """How many CALLRESULTs/CALLERRORs the charger received per unique id (message log)."""
    store = proxy.registry.store
    await store.flush()
    rows = await store.messages("CP_1", limit=10_000)
    return Counter(
        r.unique_id
        for r in rows
        if r.peer == "charger" and r.direction == "out" and r.message_type in (3, 4)
    )


async def set_read_only(store: Store, read_only: bool) -> None:
    """Make the store's SQLite refuse (or accept again) every write, as a read-only disk does."""
    db = store._db  # the fault is injected into SQLite itself, under the store's own lock
    async with db.lock:
        await db.connection().execute(f"PRAGMA query_only = {int(read_only)}")


def store_problem(proxy: Proxy) -> str | None:
    """The state of the proxy's Store problem entity in Home Assistant."""
    entity = next(e for e in proxy_entities(proxy.registry) if e.description is STORE_PROBLEM)
    return entity.state


def transaction_calls(csms: Csms) -> list[str]:
    return [
        r.action if r.action != "TransactionEvent" else r.payload["eventType"]
        for r in csms.calls()
        if r.action in ("StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent")
    ]


# -- nothing doubled ---------------------------------------------------------------------


class _Socket:
    """A WebSocket stand-in that records what the hub wrote to it (the core without I/O)."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    async def send_str(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, **_: Any) -> bool:
        return True


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("deadline_first", [True, False])
async def test_answer_and_deadline_in_the_same_loop_turn_give_the_charger_one_answer(
    tmp_path: Path, version: str, deadline_first: bool
) -> None:
    clock = ManualClock()
    config = parse_config(
        {
            "ocpp_version": version,
            "response_timeout": TIMEOUT,
            "inbound_backends": [{"id": "b", "token": "b-secret-token-0123"}],
        }
    )
    async with await Store.open(tmp_path / "db.sqlite3") as store:
        hub = ChargerHub("CP_1", config, store, clock=clock)
        charger, backend = _Socket(), _Socket()
        connection = await hub.attach_charger(charger, OcppVersion(version), "test")
        await hub.attach_backend(hub.links["b"], backend)
        await hub.on_charger_text(connection, '[2,"call-1","Heartbeat",{}]')
        await turns(lambda: backend.sent)
        answer = json.dumps(
            [CALLRESULT, backend.sent[0][1], {"currentTime": "2026-01-01T00:00:00Z"}]
        )
        # One loop turn: nothing below yields to the loop before both happened.
        if deadline_first:
            clock.advance(TIMEOUT)
            await hub.on_backend_text(hub.links["b"], answer)
        else:
            await hub.on_backend_text(hub.links["b"], answer)
            clock.advance(TIMEOUT)
        await turns(lambda: any(frame[0] in (3, 4) for frame in charger.sent))
        for _ in range(50):
            await asyncio.sleep(0)
        assert [frame[1] for frame in charger.sent if frame[0] in (3, 4)] == ["call-1"]
        await hub.close()


@pytest.mark.parametrize("version", VERSIONS)
async def test_primary_link_lost_while_waiting_the_charger_gets_one_answer_and_the_backend_its_copy(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a = await start_csms("a", version, first_transaction_id=100)
    b = await start_csms("b", version, first_transaction_id=5000)
    clock = ManualClock()
    proxy = await start_proxy(
        ocpp_version=version,
        ocpp_services=[service(a), service(b)],
        response_timeout=TIMEOUT,
        clock=clock,
    )
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    await b.wait_for_call("BootNotification")
    a.gate = asyncio.Event()  # the primary holds the start ...
    start = asyncio.create_task(charger.start_transaction(1, "TAG1", 0))
    await a.wait_for_call(transaction_calls_action(version))
    await b.wait_for_call(transaction_calls_action(version))
    stopping = asyncio.create_task(a.stop())  # ... and its link goes away while the charger waits
    transaction_id = await asyncio.wait_for(start, 10)
    assert transaction_id is not None
    a.gate.set()  # a's handler was still holding the start: let it end with its connection
    await stopping
    a.gate = None
    a.received.clear()
    await a.start()
    await reconnect(clock, a)
    await a.wait_for_call(transaction_calls_action(version), timeout=15)
    await charger.stop_transaction(transaction_id, 1_000)
    await a.wait_until(lambda: len(transaction_calls(a)) == 2, timeout=10)
    assert transaction_calls(a)[0] in ("StartTransaction", "Started")
    assert max((await answers_to_charger(proxy)).values()) == 1


def transaction_calls_action(version: str) -> str:
    return "StartTransaction" if version == "1.6" else "TransactionEvent"


@pytest.mark.parametrize("version", VERSIONS)
async def test_backend_frozen_longer_than_response_timeout_gets_each_message_once(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a = await start_csms("a", version, first_transaction_id=100)
    b = await start_csms("b", version, first_transaction_id=5000)
    clock = ManualClock()
    proxy = await start_proxy(
        ocpp_version=version,
        ocpp_services=[service(a), service(b)],
        response_timeout=TIMEOUT,
        clock=clock,
    )
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    await b.wait_for_call("BootNotification")
    b.gate = asyncio.Event()  # b's TCP stays open, b answers nothing
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await charger.meter_values(1, transaction_id, 500, 7_000)
    await b.wait_until(lambda: len(transaction_calls(b)) == 1)
    link = proxy.hub().links["b"]
    for _ in range(10):  # ten response timeouts
        await clock.step(TIMEOUT)
    assert transaction_calls(b) == ["StartTransaction" if version == "1.6" else "Started"]
    assert link.connected and link.queue_depth == 2
    assert "no answer" in link.snapshot()["last_error"]
    b.gate.set()  # b thaws: the late answer counts, then the rest follows, once each
    await b.wait_until(lambda: len(transaction_calls(b)) == 2)
    assert await link.drained(5)
    assert transaction_calls(b) == (
        ["StartTransaction", "MeterValues"] if version == "1.6" else ["Started", "Updated"]
    )
    if version == "1.6":
        assert tx_ids(b, "MeterValues") == [5000]
    assert max((await answers_to_charger(proxy)).values()) == 1


# -- nothing lost --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_store_failing_under_a_running_session_relays_everything_and_recovers(
    start_csms,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    version: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = await start_csms("a", version, first_transaction_id=100)
    b = await start_csms("b", version, first_transaction_id=5000)
    await b.stop()  # b is down: it needs an outbox row for every transaction message
    clock = ManualClock()
    proxy = await start_proxy(
        ocpp_version=version,
        ocpp_services=[service(a), service(b)],
        response_timeout=TIMEOUT,
        clock=clock,
    )
    store = proxy.registry.store
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    await charger.status(1, "Available")

    caplog.set_level(logging.WARNING)
    await set_read_only(store, True)
    # Every kind of transaction message, while no write succeeds: each is relayed and answered.
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await charger.meter_values(1, transaction_id, 1_000, 7_000)
    await charger.stop_transaction(transaction_id, 2_000)
    expected = (
        ["StartTransaction", "MeterValues", "StopTransaction"]
        if version == "1.6"
        else ["Started", "Updated", "Ended"]
    )
    assert transaction_calls(a) == expected
    status = await proxy.get_json("/status")
    assert status["store"]["ok"] is False
    assert status["store"]["messages_at_risk"] == 3
    assert f"transaction {transaction_id}" in status["store"]["alerts"][0]["message"]
    at_risk = [r for r in caplog.records if r.levelno == logging.ERROR and "at risk" in r.message]
    assert len(at_risk) == 3 and all(f"transaction {transaction_id}" in r.message for r in at_risk)
    metrics = proxy.registry.metrics.render()
    assert "ocpp_proxy_messages_at_risk_total 3" in metrics
    assert "ocpp_proxy_store_ok 0" in metrics
    assert store_problem(proxy) == "ON"  # what Home Assistant shows

    await set_read_only(store, False)  # the disk is back
    hub = proxy.hub()
    await clock.step(STORE_RETRY_S)  # the rows owed are tried again
    await proxy.registry.changes.wait_for(lambda: proxy.registry.health.ok, 5)
    if (retrying := hub.keeper.retrying) is not None:  # the rows owed, written in order
        await asyncio.wait_for(asyncio.shield(retrying), 5)
    await hub.journal.settled()
    assert await store.outbox_depths("CP_1") == {"b": 3}
    assert any("works again" in r.message for r in caplog.records)
    assert (await proxy.get_json("/status"))["store"]["ok"] is True
    assert store_problem(proxy) == "OFF"

    await b.start()  # b gets the whole session, once, in order
    await reconnect(clock, b)
    await b.wait_until(lambda: len(transaction_calls(b)) == 3, timeout=15)
    assert transaction_calls(b) == expected
    if version == "1.6":
        assert tx_ids(b, "MeterValues") == [5000]
        assert tx_ids(b, "StopTransaction") == [5000]
    assert await proxy.hub().links["b"].drained(5)
    assert await store.outbox_depths("CP_1") == {}
    assert max((await answers_to_charger(proxy)).values()) == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_store_failing_holds_the_answer_until_connected_backends_confirm(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a = await start_csms("a", version, first_transaction_id=100)
    b = await start_csms("b", version, first_transaction_id=5000)
    clock = ManualClock()
    proxy = await start_proxy(
        ocpp_version=version,
        ocpp_services=[service(a), service(b)],
        response_timeout=TIMEOUT,
        clock=clock,
    )
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    await b.wait_for_call("BootNotification")
    await set_read_only(proxy.registry.store, True)
    b.gate = asyncio.Event()  # b is slow: a answers first, the charger's answer waits for b
    start = asyncio.create_task(charger.start_transaction(1, "TAG1", 0))
    await b.wait_until(lambda: len(transaction_calls(b)) == 1)
    await a.wait_until(lambda: len(transaction_calls(a)) == 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not start.done()
    b.gate.set()
    await asyncio.wait_for(start, 10)
    assert proxy.registry.health.at_risk == 0  # both confirmed before the charger's answer
    await set_read_only(proxy.registry.store, False)


@pytest.mark.parametrize("version", VERSIONS)
async def test_queue_over_its_bound_keeps_the_bound_and_sheds_readings_first(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a = await start_csms("a", version)
    b = await start_csms("b", version, first_transaction_id=5000)
    await b.stop()
    proxy = await start_proxy(
        ocpp_version=version, ocpp_services=[service(a), service(b)], outbox_max_messages=100
    )
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    for n in range(1, 151):
        await charger.meter_values(1, transaction_id, n * 10, 7_000)
    await charger.stop_transaction(transaction_id, 2_000)
    link = proxy.hub().links["b"]
    assert (link.queue_depth, link.dropped) == (100, 52)
    await proxy.recorded()
    assert (await proxy.registry.store.outbox_depths("CP_1"))["b"] == 100
    await b.start()
    await b.wait_until(lambda: len(transaction_calls(b)) == 100, timeout=15)
    calls = transaction_calls(b)
    assert calls[0] in ("StartTransaction", "Started") and calls[-1] in ("StopTransaction", "Ended")
    readings = [r for r in b.calls() if r.action in ("MeterValues", "TransactionEvent")]
    values = [_energy(r.payload) for r in readings if _energy(r.payload) is not None]
    assert values == sorted(values) and values[-1] == 1_500  # the newest readings were kept


def _energy(payload: dict[str, Any]) -> float | None:
    for meter_value in payload.get("meterValue") or []:
        for sample in meter_value.get("sampledValue", []):
            measurand = sample.get("measurand", "Energy.Active.Import.Register")
            if measurand.startswith("Energy") and sample.get("context") in (
                None,
                "Sample.Periodic",
            ):
                return float(sample["value"])
    return None


async def test_queue_of_only_starts_and_stops_still_holds_its_bound(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    b = await start_csms("b")
    await b.stop()
    proxy = await start_proxy(ocpp_services=[service(a), service(b)], outbox_max_messages=100)
    charger = await connect_charger(proxy)
    await charger.boot()
    for n in range(60):
        transaction_id = await charger.start_transaction(1, f"TAG{n}", 0)
        await charger.stop_transaction(transaction_id, 100)
    link = proxy.hub().links["b"]
    assert (link.queue_depth, link.dropped) == (100, 20)
    await proxy.recorded()
    assert (await proxy.registry.store.outbox_depths("CP_1"))["b"] == 100


# -- nothing blocks ------------------------------------------------------------------------

B_TOKEN = "b-secret-token-0123"


async def test_backend_that_never_reads_is_dropped_and_the_charger_keeps_getting_answers(
    start_csms, start_proxy: StartProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "WRITE_TIMEOUT_S", 0.5)
    a = await start_csms("a")
    proxy = await start_proxy(
        ocpp_services=[service(a)],
        inbound_backends=[{"id": "b", "token": B_TOKEN}],
        preferred_provider="a",
    )
    answers: dict[str, asyncio.Future[list[Any]]] = {}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(proxy.charger_url(), protocols=["ocpp1.6"]) as charger,
    ):
        # A raw charger: it answers each command with a large DataTransfer answer (500 kB).

        async def serve_charger() -> None:
            async for message in charger:
                frame = json.loads(message.data)
                if frame[0] == 2:
                    await charger.send_str(
                        json.dumps([3, frame[1], {"status": "Accepted", "data": "x" * 500_000}])
                    )
                elif frame[1] in answers:
                    answers[frame[1]].set_result(frame)

        async def call(unique_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
            answers[unique_id] = asyncio.get_running_loop().create_future()
            await charger.send_str(json.dumps([2, unique_id, action, payload]))
            return await asyncio.wait_for(answers[unique_id], 10)

        serving = asyncio.create_task(serve_charger())
        boot = {"chargePointVendor": "v", "chargePointModel": "m"}
        assert (await call("boot", "BootNotification", boot))[2]["status"] == "Accepted"
        # b sends commands and never reads: aiohttp stops reading its socket once 64 kB wait
        # unread, so the answers pile up in the proxy's write to b.
        b = await session.ws_connect(
            f"{proxy.base}/backend?id=b&token={B_TOKEN}&charge_point_id=CP_1",
            protocols=["ocpp1.6"],
            autoping=False,
        )
        link = proxy.hub().links["b"]
        await proxy.registry.changes.wait_for(lambda: link.connected, 5)
        for n in range(150):
            await b.send_str(json.dumps([2, f"cmd-{n}", "DataTransfer", {"vendorId": "acme"}]))
        for n in range(20):  # the charger is answered all along, by a
            assert (await call(f"hb-{n}", "Heartbeat", {}))[0] == 3
        await proxy.registry.changes.wait_for(lambda: not link.connected, 10)
        assert "dropped" in link.snapshot()["last_error"]
        assert (await call("hb-last", "Heartbeat", {}))[0] == 3
        serving.cancel()
        await b.close()
    assert len(a.calls("Heartbeat")) == 21


async def test_a_charger_whose_restore_waits_on_the_store_holds_up_no_other_charger(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    # After a power cut a depot's chargers reconnect at once; each hub first reads what the
    # store kept for it. One slow read must not queue every other charger behind it.
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    store = proxy.registry.store
    kept_ids = store.transaction_id_map
    reads: Counter[str] = Counter()
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_for_one(cp_id: str, **kwargs: Any) -> dict[int, dict[str, int]]:
        reads[cp_id] += 1
        if cp_id == "CP_SLOW":
            reading.set()
            await release.wait()
        return await kept_ids(cp_id, **kwargs)

    store.transaction_id_map = slow_for_one  # type: ignore[method-assign]
    await connect_charger(proxy, "CP_SLOW")
    await asyncio.wait_for(reading.wait(), 5)
    # The same charge point again before its hub is ready: the later connection wins, as
    # ever, and both wait for the one restore.
    again = await connect_charger(proxy, "CP_SLOW")
    slow_boot = asyncio.create_task(again.boot())

    other = await connect_charger(proxy, "CP_2")
    answer = await asyncio.wait_for(other.boot(), 5)
    assert answer.status == "Accepted"
    assert [c.charge_point_id for c in a.calls("BootNotification")] == ["CP_2"]
    assert not slow_boot.done()

    release.set()
    assert (await asyncio.wait_for(slow_boot, 5)).status == "Accepted"
    assert reads["CP_SLOW"] == 1
    assert proxy.registry.get("CP_SLOW") is not None


async def test_a_restore_outlives_a_cancelled_caller_and_a_failed_one_is_tried_again(
    start_proxy: StartProxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await start_proxy()
    registry, store = proxy.registry, proxy.registry.store
    kept_ids = store.transaction_id_map
    reading, release = asyncio.Event(), asyncio.Event()
    failures = ["the disk is gone"]

    async def read(cp_id: str, **kwargs: Any) -> dict[int, dict[str, int]]:
        reading.set()
        await release.wait()
        if failures:
            raise StoreError(failures.pop())
        return await kept_ids(cp_id, **kwargs)

    store.transaction_id_map = read  # type: ignore[method-assign]
    first, second = (asyncio.create_task(registry.open("CP_9")) for _ in range(2))
    await asyncio.wait_for(reading.wait(), 5)  # both callers wait on the one restore
    first.cancel()  # a charger gone while its hub is restored
    release.set()
    with pytest.raises(StoreError, match="the disk is gone"):
        await second
    assert first.cancelled() and registry.get("CP_9") is None
    assert "CP_9: its hub could not be opened: the disk is gone" in caplog.text
    hub = await registry.open("CP_9")  # the store works again: a new restore
    assert registry.get("CP_9") is hub


# -- retries after a reconnect: bounded, with backoff ----------------------------------------


class _Sender:
    """A send queue stand-in for a link (the link's logic without sockets)."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []
        self.peer = _Socket()

    def send(self, text: str) -> bool:
        self.sent.append(json.loads(text))
        return True


def test_unanswered_transaction_message_is_resent_only_after_reconnects_with_backoff_then_given_up() -> (
    None
):
    clock = ManualClock()
    ready: list[BackendLink] = []
    link = BackendLink(
        "b",
        Direction.OUTBOUND,
        version=OcppVersion.V16,
        clock=clock,
        response_timeout=TIMEOUT,
        max_attempts=3,
        retry_interval_s=10.0,
        on_ready=ready.append,
    )
    frame = parse_frame('[2,"m1","StopTransaction",{"transactionId":1,"meterStop":5}]')
    delivery = Delivery(frame, charger_message_rule(OcppVersion.V16, "StopTransaction", {}))
    link.add(delivery)
    sends: list[_Sender] = []

    def connect() -> list[Delivery]:
        sends.append(_Sender())
        return link.attach(sends[-1], [])  # type: ignore[arg-type]

    def pump() -> None:
        if (next_delivery := link.next_to_send()) is not None:
            link.sent(next_delivery, next_delivery.frame.raw)

    assert connect() == []
    pump()
    clock.advance(10 * TIMEOUT)  # no answer for a long time: never sent again on this link
    pump()
    assert len(sends[0].sent) == 1 and link.queue_depth == 1

    link.detach("gone")
    assert connect() == []  # attempt 2 at once after the reconnect, under a fresh unique id
    pump()
    assert len(sends[1].sent) == 1 and sends[1].sent[0][1] != "m1"

    link.detach("gone")
    assert connect() == []  # attempt 3 only after 10 s
    pump()
    assert sends[2].sent == []
    clock.advance(9.9)
    pump()
    assert sends[2].sent == []
    clock.advance(0.1)
    assert ready == [link]
    pump()
    assert len(sends[2].sent) == 1

    link.detach("gone")
    assert connect() == [delivery]  # three attempts made: given up, counted
    assert (link.queue_depth, link.given_up) == (0, 1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_charger_gone_before_its_answer_backends_get_only_its_resend(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a = await start_csms("a", version, first_transaction_id=100)
    b = await start_csms("b", version, first_transaction_id=5000)
    await b.stop()  # b is down: its copy of the start waits in its queue, never sent
    proxy = await start_proxy(ocpp_version=version, ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy, version=version)
    await charger.boot()
    a.gate = asyncio.Event()  # the primary holds the start: the charger has no answer yet
    start = asyncio.create_task(charger.start_transaction(1, "TAG1", 0))
    await a.wait_until(lambda: len(transaction_calls(a)) == 1)
    assert proxy.hub().links["b"].queue_depth == 1
    await charger.close()  # the charger goes before its answer: it keeps the start
    start.cancel()
    await proxy.registry.changes.wait_for(lambda: proxy.hub().charger is None, 5)
    assert proxy.hub().links["b"].queue_depth == 0
    a.gate.set()

    charger = await connect_charger(proxy, version=version)  # back, and sends it again
    await charger.start_transaction(1, "TAG1", 0)
    await b.start()
    await b.wait_until(lambda: len(transaction_calls(b)) == 1, timeout=15)
    assert await proxy.hub().links["b"].drained(5)
    assert transaction_calls(b) == ["StartTransaction" if version == "1.6" else "Started"]
