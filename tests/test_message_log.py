"""The message log: every frame kept, and frames it loses shown, never lost silently (issue 11)."""

from __future__ import annotations

import pytest

from ocpp_proxy.store import write_behind
from ocpp_proxy.store.errors import StoreError
from tests.conftest import ConnectCharger, StartProxy, service
from tests.test_relay_core import set_read_only  # a read-only disk, injected into SQLite


def metric(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def test_every_frame_of_a_round_trip_is_logged_in_order(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(csms)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.heartbeat()

    rows = await proxy.registry.store.messages("CP_1", limit=100)
    heartbeat = next(r for r in rows if r.action == "Heartbeat").unique_id
    trip = [
        (r.peer, r.direction, r.message_type) for r in reversed(rows) if r.unique_id == heartbeat
    ]
    assert trip == [("charger", "in", 2), ("a", "out", 2), ("a", "in", 3), ("charger", "out", 3)]
    ids = [r.id for r in rows]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)  # newest first
    status = await proxy.get_json("/status")
    assert status["message_log"] == {
        "enabled": True,
        "logged": len(rows),
        "buffered": 0,
        "dropped": 0,
    }


async def test_frames_the_message_log_loses_show_in_status_and_metrics(
    start_csms,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csms = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(csms)])
    store = proxy.registry.store
    charger = await connect_charger(proxy)
    await charger.boot()
    await store.flush()

    await set_read_only(store, True)  # the disk refuses writes: frames wait in memory
    monkeypatch.setattr(write_behind, "MAX_BUFFERED_FRAMES", 2)
    await charger.heartbeat()  # relayed all the same: 4 frames, 2 over the buffer's bound
    with pytest.raises(StoreError):
        await store.flush()

    status = await proxy.get_json("/status")
    assert (status["message_log"]["buffered"], status["message_log"]["dropped"]) == (2, 2)
    metrics = proxy.registry.metrics.render()
    assert metric(metrics, "ocpp_proxy_message_log_frames_dropped_total") == 2
    assert metric(metrics, "ocpp_proxy_message_log_frames_buffered") == 2
    assert metric(metrics, "ocpp_proxy_message_log_frames_total") == status["message_log"]["logged"]

    await set_read_only(store, False)  # the disk is back: what waited is written, in order
    rows = await store.messages("CP_1", limit=2)
    assert [(r.peer, r.direction, r.message_type) for r in rows] == [
        ("charger", "out", 3),
        ("a", "in", 3),
    ]
    assert (await proxy.get_json("/status"))["message_log"]["buffered"] == 0
