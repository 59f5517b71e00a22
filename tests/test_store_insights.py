"""The store's aggregates for the homeowner: energy per period, charger and owner; filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from ocpp_proxy.store import EnergyTotal, Store

TARIFFS = {"a": (0.30, "EUR"), "b": (0.20, "EUR")}


def at(text: str) -> float:
    """A local time as Unix s."""
    return datetime.fromisoformat(text).timestamp()


async def session(
    store: Store, cp: str, owner: str | None, start: str, kwh: float, backends: tuple[str, ...] = ()
) -> int:
    started = at(start)
    session_id = await store.session_started(
        cp,
        transaction_id=f"{cp}-{start}",
        connector_id=1,
        evse_id=None,
        id_tag="TAG",
        meter_start_wh=0,
        started_at=started,
        owner=owner,
    )
    for backend in backends:
        await store.session_set_backend_transaction(session_id, backend, f"{backend}-{start}")
    await store.session_stopped(
        session_id,
        stopped_at=started + 3600,
        meter_stop_wh=kwh * 1000,
        stop_reason="Local",
        tariffs=TARIFFS,
    )
    return session_id


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "db.sqlite3")
    # Monday 2026-03-02 .. Sunday 2026-03-08 is one week; 2026-04-01 another month.
    await session(store, "CP_1", "a", "2026-03-02T08:00", 5, backends=("a", "b"))
    await session(store, "CP_1", "a", "2026-03-02T20:00", 3, backends=("a", "b"))
    await session(store, "CP_1", "b", "2026-03-08T23:30", 2, backends=("a", "b"))
    await session(store, "CP_2", "local", "2026-03-09T01:00", 4)
    await session(store, "CP_1", None, "2026-04-01T12:00", 1)
    await store.session_started(
        "CP_1",
        transaction_id="open",
        connector_id=1,
        evse_id=None,
        id_tag=None,
        meter_start_wh=0,
        started_at=at("2026-03-02T09:00"),
        owner="a",
    )
    yield store
    await store.close()


async def test_energy_per_day_charger_and_owner_leaves_open_sessions_out(store: Store) -> None:
    totals = await store.energy_totals("day")
    assert totals == [
        EnergyTotal("2026-03-02", "CP_1", "a", 2, 8.0, pytest.approx(2.4), "EUR"),
        EnergyTotal("2026-03-08", "CP_1", "b", 1, 2.0, pytest.approx(0.4), "EUR"),
        EnergyTotal("2026-03-09", "CP_2", "local", 1, 4.0, None, None),
        EnergyTotal("2026-04-01", "CP_1", None, 1, 1.0, None, None),
    ]


async def test_energy_per_week_starts_on_monday_and_per_month(store: Store) -> None:
    weeks = [(t.period, t.owner, t.energy_kwh) for t in await store.energy_totals("week")]
    assert weeks == [
        ("2026-03-02", "a", 8.0),
        ("2026-03-02", "b", 2.0),
        ("2026-03-09", "local", 4.0),
        ("2026-03-30", None, 1.0),
    ]
    months = [
        (t.period, t.charge_point_id, t.energy_kwh) for t in await store.energy_totals("month")
    ]
    assert months == [
        ("2026-03", "CP_1", 8.0),
        ("2026-03", "CP_1", 2.0),
        ("2026-03", "CP_2", 4.0),
        ("2026-04", "CP_1", 1.0),
    ]


async def test_energy_filters_and_bad_period(store: Store) -> None:
    only = await store.energy_totals(
        "month", since=at("2026-03-03T00:00"), until=at("2026-04-01T00:00"), charge_point_id="CP_1"
    )
    assert [(t.period, t.owner, t.energy_kwh) for t in only] == [("2026-03", "b", 2.0)]
    with pytest.raises(ValueError, match="period"):
        await store.energy_totals("year")


async def test_sessions_of_a_backend_include_those_it_took_part_in(store: Store) -> None:
    assert len(await store.sessions(backend="b")) == 3  # relayed to b
    assert len(await store.sessions(backend="a")) == 4  # relayed to a, or owned by it
    assert len(await store.sessions(backend="local")) == 1
    owned = await store.sessions(backend="a", owner="b")
    assert [row.owner for row in owned] == ["b"]
