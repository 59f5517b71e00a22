"""Nothing lost: per-backend outbox and replay, sessions, revenue, audit and message log."""

from __future__ import annotations

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from tests.conftest import ConnectCharger, StartProxy, service, tx_ids
from tests.peers import Csms


async def test_backend_down_for_the_whole_session_gets_all_of_it_in_order_when_back(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", first_transaction_id=100)
    b = await start_csms("b", first_transaction_id=5000)
    await b.stop()
    proxy = await start_proxy(ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Charging")
    transaction_id = await charger.start_transaction(1, "TAG1", 10_000)
    for energy in (11_000, 12_000, 13_000):
        await charger.meter_values(1, transaction_id, energy, 7_000)
    await charger.stop_transaction(transaction_id, 14_000)
    assert proxy.hub().links["b"].queue_depth == 5

    await b.start()
    await b.wait_for_call("StopTransaction", timeout=10)
    # What a real charger would show after a reconnect, then the session, in order.
    assert [r.action for r in b.calls()] == [
        "BootNotification",
        "StatusNotification",
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    assert tx_ids(b, "MeterValues") == [5000, 5000, 5000]
    assert tx_ids(b, "StopTransaction") == [5000]
    assert await proxy.hub().links["b"].drained(5)

    await proxy.recorded()
    store = proxy.registry.store
    (session,) = await store.sessions(charge_point_id="CP_1")
    assert session.transaction_id == str(transaction_id)
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_kwh) == (
        10_000,
        14_000,
        4.0,
    )
    assert session.owner == "a"  # a local start, answered by the primary
    assert session.stop_reason == "Local"
    assert session.backend_transaction_ids == {"a": "100", "b": "5000"}
    samples = await store.session_samples(session.id)
    energy = [s.value for s in samples if s.measurand == "Energy.Active.Import.Register"]
    assert energy == [11_000, 12_000, 13_000]
    assert await store.outbox_depths("CP_1") == {}


async def test_outbox_over_its_bound_drops_the_oldest_meter_values_never_start_or_stop(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    b = await start_csms("b", first_transaction_id=5000)
    await b.stop()
    proxy = await start_proxy(ocpp_services=[service(a), service(b)], outbox_max_messages=100)
    charger = await connect_charger(proxy)
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    for n in range(1, 121):
        await charger.meter_values(1, transaction_id, n * 10, 7_000)
    await charger.stop_transaction(transaction_id, 1_300)

    link = proxy.hub().links["b"]
    assert link.queue_depth == 100
    status = await proxy.get_json("/status")
    b_status = next(x for x in status["chargers"][0]["backends"] if x["id"] == "b")
    assert (b_status["queue_depth"], b_status["dropped"]) == (100, 22)
    await proxy.recorded()  # the rows of what was dropped are forgotten behind the path
    assert (await proxy.registry.store.outbox_depths("CP_1"))["b"] == 100

    await b.start()
    await b.wait_for_call("StopTransaction", timeout=15)
    actions = [r.action for r in b.calls()]
    assert actions[:2] == ["BootNotification", "StartTransaction"]
    assert actions[-1] == "StopTransaction"
    meters = [
        r.payload["meterValue"][0]["sampledValue"][0]["value"] for r in b.calls("MeterValues")
    ]
    assert meters == [str(n * 10) for n in range(23, 121)]  # the 22 oldest went


async def test_revenue_per_owner_with_two_tariffs(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    b = await start_csms("b")
    proxy = await start_proxy(
        ocpp_services=[
            service(a, rate_per_kwh=0.30, currency="EUR"),
            service(b, rate_per_kwh=0.25, currency="GBP"),
        ]
    )
    charger = await connect_charger(proxy)
    await charger.boot()

    async def remote_session(csms: Csms, energy_wh: int) -> None:
        answer = await csms.call(
            "CP_1", call16.RemoteStartTransaction(id_tag="APP", connector_id=1)
        )
        assert answer.status == "Accepted"
        await charger.wait_background()
        transaction_id = charger.transaction_id
        await charger.meter_values(1, transaction_id, energy_wh / 2, 11_000)
        await charger.stop_transaction(transaction_id, energy_wh)

    await remote_session(a, 12_500)
    charger.energy_wh = 0
    await remote_session(b, 8_000)
    await proxy.recorded()
    sessions = {s.owner: s for s in await proxy.registry.store.sessions(charge_point_id="CP_1")}
    assert (sessions["a"].energy_kwh, sessions["a"].revenue, sessions["a"].currency) == (
        12.5,
        3.75,
        "EUR",
    )
    assert (sessions["b"].energy_kwh, sessions["b"].revenue, sessions["b"].currency) == (
        8.0,
        2.0,
        "GBP",
    )


async def test_session_answered_by_the_proxy_itself_belongs_to_local(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy()
    charger = await connect_charger(proxy)
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG", 500)
    await charger.stop_transaction(transaction_id, 2_500)
    await proxy.recorded()
    (session,) = await proxy.registry.store.sessions()
    assert (session.owner, session.energy_kwh, session.revenue) == ("local", 2.0, None)


async def test_201_session_is_recorded_from_transaction_events_with_its_remote_start_owner(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", "2.0.1")
    b = await start_csms("b", "2.0.1")
    proxy = await start_proxy(
        ocpp_version="2.0.1", ocpp_services=[service(a), service(b, rate_per_kwh=0.2)]
    )
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    answer = await b.call(
        "CP_1",
        call201.RequestStartTransaction(
            id_token={"idToken": "APP", "type": "Central"}, remote_start_id=42, evse_id=1
        ),
    )
    assert answer.status == "Accepted"
    await charger.wait_background()
    transaction_id = charger.transaction_id
    await charger.meter_values(1, transaction_id, 3_000, 11_000)
    await charger.stop_transaction(transaction_id, 6_000)
    await a.wait_for_call("TransactionEvent", 3)
    await proxy.recorded()
    (session,) = await proxy.registry.store.sessions()
    assert session.transaction_id == transaction_id
    assert session.owner == "b"
    assert session.evse_id == 1
    assert session.stopped_at is not None and session.energy_kwh == 6.0
    assert session.revenue == 1.2


async def test_audit_log_records_each_command_with_its_decision_and_answer(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a, allow_config_changes=True)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await a.call("CP_1", call16.ChangeConfiguration(key="HeartbeatInterval", value="60"))
    await a.call("CP_1", call16.RemoteStopTransaction(transaction_id=999))
    # The audit row is written before the backend hears the outcome.
    audit = await proxy.registry.store.audit_entries("CP_1")
    stop, change = audit  # newest first
    assert (change.actor, change.action, change.decision) == ("a", "ChangeConfiguration", "allowed")
    assert '"HeartbeatInterval"' in change.summary and '"Accepted"' in (change.answer or "")
    assert (stop.decision, stop.rule) == ("refused", "unknown_transaction")


async def test_message_log_has_every_frame_in_and_out(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.heartbeat()
    rows = await proxy.registry.store.messages("CP_1")
    seen = {(r.peer, r.direction, r.message_type, r.action) for r in rows}
    assert ("charger", "in", 2, "Heartbeat") in seen
    assert ("a", "out", 2, "Heartbeat") in seen
    assert ("a", "in", 3, None) in seen
    assert ("charger", "out", 3, None) in seen
