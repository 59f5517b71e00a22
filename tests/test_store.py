"""The durable store, against real SQLite files in tmp_path."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import stat
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiosqlite
import pytest

from ocpp_proxy.metering import register_rise_wh, session_energy_kwh
from ocpp_proxy.store import (
    DATABASE_FILE,
    ENERGY_REGISTER,
    SCHEMA_VERSION,
    MeterSample,
    Store,
    StoreError,
    schema,
    write_behind,
)
from ocpp_proxy.store.store import TRANSACTION_ID_EPOCH

REPO = Path(__file__).resolve().parents[1]
CP = "CP_1"
START = '[2,"s1","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"x"}]'

OpenStore = Callable[..., Awaitable[Store]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / DATABASE_FILE


@pytest.fixture
async def open_store(db_path: Path) -> AsyncIterator[OpenStore]:
    """Open stores on ``db_path`` (options as for Store.open); all are closed at the end."""
    opened: list[Store] = []

    async def open_(**options: float) -> Store:
        store = await Store.open(db_path, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


async def reopen(store: Store, open_store: OpenStore) -> Store:
    await store.close()
    return await open_store()


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}


def write_garbage(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite file, but long enough to have a header" * 100)


def count_rows(path: Path, table: str) -> int:
    # Reads the file through a second connection: only what was committed.
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def logged_frames(path: Path) -> int:
    """Frames committed to the message log (kept in blocks of frames)."""
    with sqlite3.connect(path) as connection:
        row = connection.execute("SELECT coalesce(sum(frames), 0) FROM message_log_blocks")
        return row.fetchone()[0]


async def queue(store: Store, action: str, backends: tuple[str, ...] = ("a",)) -> dict[str, int]:
    return await store.outbox_add(
        CP,
        backend_ids=backends,
        action=action,
        frame=f'[2,"x","{action}",{{}}]',
        transaction_id=None,
        at=time.time(),
    )


async def start_session(
    store: Store,
    transaction_id: str,
    *,
    owner: str | None = "a",
    meter_start_wh: float | None = None,
    started_at: float = 1_000.0,
    cp_id: str = CP,
) -> int:
    return await store.session_started(
        cp_id,
        transaction_id=transaction_id,
        connector_id=1,
        evse_id=None,
        id_tag="TAG",
        meter_start_wh=meter_start_wh,
        started_at=started_at,
        owner=owner,
    )


def register(
    at: float, value: float, unit: str | None = "Wh", phase: str | None = None
) -> MeterSample:
    return MeterSample(at, ENERGY_REGISTER, phase, value, unit, "Sample.Periodic")


def log(
    store: Store, count: int, *, at: float | None = None, cp_id: str = CP, start: int = 0
) -> None:
    for i in range(start, start + count):
        store.log_frame(
            cp_id,
            peer="charger",
            direction="in",
            message_type=2,
            action="Heartbeat",
            unique_id=str(i),
            frame=f'[2,"{i}","Heartbeat",{{}}]',
            at=time.time() if at is None else at,
        )


# -- schema and migrations ---------------------------------------------------------------


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in schema.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert SCHEMA_VERSION == schema.MIGRATIONS[-1].version == 8
    for migration in schema.MIGRATIONS:
        assert schema.split_statements(migration.script)


def test_split_statements_keeps_semicolons_in_strings_and_comments() -> None:
    script = (
        "-- one; two\nCREATE TABLE t (x TEXT DEFAULT 'a;b');\n\nINSERT INTO t VALUES ('c;d');\n"
    )
    assert schema.split_statements(script) == [
        "-- one; two\nCREATE TABLE t (x TEXT DEFAULT 'a;b');",
        "INSERT INTO t VALUES ('c;d');",
    ]
    with pytest.raises(ValueError, match="unfinished"):
        schema.split_statements("INSERT INTO t VALUES ('a;b")
    assert schema.split_statements("SELECT 1") == ["SELECT 1;"]  # a last ';' may be left out


async def test_a_new_file_gets_the_current_schema(store: Store, db_path: Path) -> None:
    assert user_version(db_path) == SCHEMA_VERSION
    assert {
        "chargers",
        "sessions",
        "session_backends",
        "meter_samples",
        "transaction_ids",
        "transaction_id_backends",
        "counters",
        "outbox",
        "audit_log",
        "message_log_blocks",
    } <= tables(db_path)
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_version_1_file_is_upgraded_keeping_its_data(
    db_path: Path, open_store: OpenStore
) -> None:
    async with aiosqlite.connect(db_path, isolation_level=None) as connection:
        assert await schema.migrate(connection, target=1) == (0, 1)
        await connection.execute(
            "INSERT INTO sessions (charge_point_id, transaction_id, owner, started_at, "
            "meter_start_wh) VALUES (?, ?, ?, ?, ?)",
            [CP, "42", "a", 1_000.0, 500.0],
        )
        await connection.execute(
            "INSERT INTO outbox (charge_point_id, backend_id, action, frame, transaction_id, "
            "created_at) VALUES (?, 'a', 'StartTransaction', ?, 42, 1000.0)",
            [CP, START],
        )
    assert user_version(db_path) == 1
    assert "audit_log" not in tables(db_path)

    store = await open_store()

    assert user_version(db_path) == SCHEMA_VERSION
    [session] = await store.open_sessions(CP)
    assert (session.transaction_id, session.owner, session.meter_start_wh) == ("42", "a", 500.0)
    assert [row.frame for row in (await store.outbox_load(CP))["a"]] == [START]
    await store.audit(
        CP,
        actor="a",
        action="Reset",
        summary="reset",
        decision="allowed",
        rule=None,
        reason=None,
        answer=None,
        at=1.0,
    )
    assert len(await store.audit_entries()) == 1


async def test_logged_times_read_back_exactly_beside_blocks_of_the_earlier_format(
    db_path: Path, open_store: OpenStore
) -> None:
    store = await open_store()
    log(store, 1, at=1764547200.5)  # an earlier block: decimal µs, as written before
    await store.flush()
    with sqlite3.connect(db_path) as connection:
        connection.execute(
            "UPDATE message_log_blocks SET body = '1764547200500000' || substr(body, instr("
            "body, char(30)))"
        )
    at = 1764547201.123456789  # not a whole number of µs: kept as the float it was
    log(store, 2, at=at, start=1)
    await store.flush()

    rows = sorted(await store.messages(CP), key=lambda row: row.id)
    assert [row.at for row in rows] == [1764547200.5, at, at]
    assert [row.unique_id for row in rows] == ["0", "1", "2"]


async def test_a_version_7_message_log_is_kept_in_blocks_with_its_ids(
    db_path: Path, open_store: OpenStore
) -> None:
    now = time.time()
    async with aiosqlite.connect(db_path, isolation_level=None) as connection:
        await schema.migrate(connection, target=7)
        await connection.executemany(
            "INSERT INTO message_log (id, charge_point_id, at, peer, direction, message_type, "
            "action, unique_id, frame, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    7,
                    CP,
                    now - 2,
                    "charger",
                    "in",
                    2,
                    "Heartbeat",
                    "h1",
                    '[2,"h1","Heartbeat",{}]',
                    23,
                ),
                (9, CP, now - 1, "a", "in", 3, None, "h1", '[3,"h1",{"v":"€"}]', 20),
                (12, "CP_other", now, "charger", "out", 3, None, "x", '[3,"x",{}]', 10),
            ],
        )

    store = await open_store()

    rows = await store.messages(CP)
    assert [
        (r.id, r.peer, r.direction, r.message_type, r.action, r.frame, r.size) for r in rows
    ] == [
        (9, "a", "in", 3, None, '[3,"h1",{"v":"€"}]', 20),
        (7, "charger", "in", 2, "Heartbeat", '[2,"h1","Heartbeat",{}]', 23),
    ]
    assert rows[1].at == pytest.approx(now - 2, abs=1e-3)  # SQLite writes 15 digits in JSON
    log(store, 1)  # new frames get ids after the old ones
    assert [r.id for r in await store.messages(limit=2)] == [13, 12]


async def test_a_failed_migration_is_rolled_back(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = schema.Migration(2, "broken", "CREATE TABLE audit_log (id INTEGER);\nCREATE TABLEX;")
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    async with aiosqlite.connect(db_path, isolation_level=None) as connection:
        with pytest.raises(StoreError, match=r"schema migration 2 \(broken\) failed"):
            await schema.migrate(connection, target=2)
    assert user_version(db_path) == 1
    assert "outbox" in tables(db_path)
    assert "audit_log" not in tables(db_path)


async def test_a_newer_file_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)
    message = str(caught.value)
    assert (
        f"database schema version 99 is newer than this ocpp-proxy supports ({SCHEMA_VERSION})"
        in message
    )
    assert "upgrade ocpp-proxy or use another data dir" in message
    assert user_version(db_path) == 99


async def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    write_garbage(db_path)
    with pytest.raises(StoreError, match="cannot use database"):
        await Store.open(db_path)


async def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot create database"):
        await Store.open(tmp_path / "absent" / DATABASE_FILE)


async def test_reopening_is_idempotent(store: Store, open_store: OpenStore, db_path: Path) -> None:
    await queue(store, "StartTransaction")
    for _ in range(3):
        store = await reopen(store, open_store)
        assert user_version(db_path) == SCHEMA_VERSION
    assert (await store.outbox_depths(CP)) == {"a": 1}
    async with aiosqlite.connect(db_path, isolation_level=None) as connection:
        assert await schema.migrate(connection) == (SCHEMA_VERSION, SCHEMA_VERSION)


async def test_the_files_are_readable_by_their_owner_only(store: Store, db_path: Path) -> None:
    await queue(store, "StartTransaction")  # the WAL has content
    for name in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        assert name.exists(), name
        assert stat.S_IMODE(name.stat().st_mode) == 0o600, name


# -- durability ----------------------------------------------------------------------------


async def test_everything_survives_close_and_reopen(store: Store, open_store: OpenStore) -> None:
    first = await store.allocate_transaction_id(CP)
    second = await store.allocate_transaction_id(CP)
    await store.record_backend_transaction_id(CP, first, "a", 501)
    await store.record_backend_transaction_id(CP, first, "b", 9001)
    start = await queue(store, "StartTransaction", ("a", "b"))
    meter = await queue(store, "MeterValues", ("a",))
    stop = await queue(store, "StopTransaction", ("b", "a"))
    session_id = await start_session(store, str(first), meter_start_wh=100.0)
    await store.session_set_backend_transaction(session_id, "a", "501")

    store = await reopen(store, open_store)

    queues = await store.outbox_load(CP)
    assert [r.id for r in queues["a"]] == [start["a"], meter["a"], stop["a"]]
    assert [r.action for r in queues["a"]] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert [r.id for r in queues["b"]] == [start["b"], stop["b"]]
    assert await store.outbox_charge_point_ids() == [CP]
    assert await store.transaction_id_map(CP) == {first: {"a": 501, "b": 9001}, second: {}}
    [session] = await store.open_sessions(CP)
    assert session.id == session_id
    assert session.backend_transaction_ids == {"a": "501"}
    assert await store.open_session(CP, str(first)) == session
    third = await store.allocate_transaction_id(CP)
    assert third == second + 1


async def test_committed_writes_survive_sigkill(db_path: Path, open_store: OpenStore) -> None:
    child = textwrap.dedent(
        """
        import asyncio, os, signal, sys
        from ocpp_proxy.store import Store

        async def main():
            store = await Store.open(sys.argv[1])
            tx = await store.allocate_transaction_id("CP_1")
            await store.record_backend_transaction_id("CP_1", tx, "a", 77)
            await store.outbox_add("CP_1", backend_ids=["a", "b"], action="StartTransaction",
                                   frame="[2]", transaction_id=tx, at=1.0)
            await store.session_started("CP_1", transaction_id=str(tx), connector_id=1,
                                        evse_id=None, id_tag=None, meter_start_wh=0.0,
                                        started_at=1.0, owner="a")
            print(tx, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", child, str(db_path), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == -signal.SIGKILL
    tx = int(out)

    store = await open_store()

    assert await store.transaction_id_map(CP) == {tx: {"a": 77}}
    assert await store.outbox_depths(CP) == {"a": 1, "b": 1}
    assert [s.transaction_id for s in await store.open_sessions(CP)] == [str(tx)]
    assert await store.allocate_transaction_id(CP) == tx + 1


async def test_transaction_ids_start_from_seconds_since_2024_per_charge_point(store: Store) -> None:
    before = int(time.time()) - TRANSACTION_ID_EPOCH
    first = await store.allocate_transaction_id(CP)
    after = int(time.time()) - TRANSACTION_ID_EPOCH
    assert before <= first <= after
    assert await store.allocate_transaction_id(CP) == first + 1
    other = await store.allocate_transaction_id("CP_2")
    assert before <= other <= after  # a counter of its own
    assert await store.transaction_id_map("CP_2") == {other: {}}


async def test_transaction_id_map_keeps_the_newest(store: Store) -> None:
    ids = [await store.allocate_transaction_id(CP) for _ in range(6)]
    await store.record_backend_transaction_id(CP, ids[-1], "a", 1)
    assert list(await store.transaction_id_map(CP, limit=4)) == ids[-4:]
    assert (await store.transaction_id_map(CP, limit=4))[ids[-1]] == {"a": 1}


async def test_concurrent_writes_never_mix(store: Store) -> None:
    results = await asyncio.gather(
        *(store.allocate_transaction_id(CP) for _ in range(40)),
        *(queue(store, "MeterValues", ("a", "b")) for _ in range(40)),
    )
    tx_ids = sorted(results[:40])
    assert tx_ids == list(range(tx_ids[0], tx_ids[0] + 40))
    row_ids = [i for added in results[40:] for i in added.values()]
    assert len(set(row_ids)) == 80
    assert await store.outbox_depths(CP) == {"a": 40, "b": 40}


async def test_a_cancelled_write_still_commits_whole(store: Store, open_store: OpenStore) -> None:
    task = asyncio.create_task(queue(store, "StopTransaction", ("a", "b", "c")))
    await asyncio.sleep(0)  # let it start
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    depths = await store.outbox_depths(CP)
    assert depths in ({}, {"a": 1, "b": 1, "c": 1})  # never part of it
    store = await reopen(store, open_store)  # close waits for writes under way
    assert await store.outbox_depths(CP) == {"a": 1, "b": 1, "c": 1}
    await queue(store, "MeterValues")  # the connection is not left in a transaction


# -- outbox ----------------------------------------------------------------------------------


async def test_outbox_remove_depths_and_charge_point_ids(store: Store) -> None:
    added = await queue(store, "StartTransaction", ("a", "b", "a"))
    assert list(added) == ["a", "b"]  # one row per backend
    await store.outbox_add(
        "CP_2",
        backend_ids=["a"],
        action="StatusNotification",
        frame="[2]",
        transaction_id=None,
        at=1.0,
    )
    assert (
        await store.outbox_add(
            CP, backend_ids=[], action="X", frame="[]", transaction_id=None, at=1.0
        )
        == {}
    )
    assert await store.outbox_charge_point_ids() == [CP, "CP_2"]
    assert await store.outbox_depths(CP) == {"a": 1, "b": 1}

    assert await store.outbox_remove(added["a"]) is True
    assert await store.outbox_remove(added["a"]) is False
    assert await store.outbox_depths(CP) == {"b": 1}
    await store.outbox_remove(added["b"])
    assert await store.outbox_load(CP) == {}
    assert await store.outbox_charge_point_ids() == ["CP_2"]


async def test_outbox_keeps_the_frame_and_transaction_id(store: Store) -> None:
    ids = await store.outbox_add(
        CP,
        backend_ids=["a"],
        action="StartTransaction",
        frame=START,
        transaction_id=123,
        at=1_700_000_000.5,
    )
    [row] = (await store.outbox_load(CP))["a"]
    assert (row.id, row.backend_id, row.action, row.frame, row.transaction_id, row.created_at) == (
        ids["a"],
        "a",
        "StartTransaction",
        START,
        123,
        1_700_000_000.5,
    )


async def test_outbox_row_ids_are_never_reused(store: Store, open_store: OpenStore) -> None:
    last = (await queue(store, "MeterValues"))["a"]
    await store.outbox_remove(last)
    store = await reopen(store, open_store)
    assert (await queue(store, "MeterValues"))["a"] > last


async def test_energy_and_revenue_from_meter_start_and_stop(store: Store) -> None:
    session_id = await start_session(store, "1", meter_start_wh=1_000.0)
    await store.session_add_samples(session_id, [register(1_100.0, 99_999.0)])  # not used
    stopped = await store.session_stopped(
        session_id,
        stopped_at=2_000.0,
        meter_stop_wh=13_500.0,
        stop_reason="EVDisconnected",
        tariffs={"a": (0.30, "EUR")},
    )
    assert (stopped.energy_kwh, stopped.revenue, stopped.currency) == (12.5, 3.75, "EUR")
    assert (stopped.stopped_at, stopped.meter_stop_wh, stopped.stop_reason) == (
        2_000.0,
        13_500.0,
        "EVDisconnected",
    )
    assert await store.session(session_id) == stopped
    assert await store.open_sessions(CP) == []
    assert await store.open_session(CP, "1") is None


@pytest.mark.parametrize(
    ("unit", "first", "last"),
    [("Wh", 20_000.0, 28_000.0), ("kWh", 20.0, 28.0), (None, 20_000.0, 28_000.0)],
)
async def test_energy_from_register_samples(
    store: Store, unit: str | None, first: float, last: float
) -> None:
    session_id = await start_session(store, "1", owner="b")
    await store.session_add_samples(
        session_id,
        [
            register(1_060.0, (first + last) / 2, unit),
            MeterSample(1_060.0, "Power.Active.Import", None, 11_000.0, "W", "Sample.Periodic"),
            register(1_000.0, first, unit),  # out of order: sorted by time
        ],
    )
    await store.session_add_samples(session_id, [register(1_120.0, last, unit)])
    stopped = await store.session_stopped(
        session_id,
        stopped_at=1_200.0,
        meter_stop_wh=None,
        stop_reason=None,
        tariffs={"b": (0.25, "GBP")},
    )
    assert (stopped.energy_kwh, stopped.revenue, stopped.currency) == (8.0, 2.0, "GBP")
    assert [s.at for s in await store.session_samples(session_id)] == [
        1_000.0,
        1_060.0,
        1_060.0,
        1_120.0,
    ]


async def test_revenue_per_owner_and_tariff(store: Store) -> None:
    tariffs = {"energy_co": (0.30, "EUR"), "fleet": (0.25, "GBP")}
    one = await start_session(store, "1", owner="energy_co", meter_start_wh=0.0, started_at=1_000.0)
    two = await start_session(store, "2", owner=None, meter_start_wh=5_000.0, started_at=2_000.0)
    await store.session_set_owner(two, "fleet")
    first = await store.session_stopped(
        one, stopped_at=1_500.0, meter_stop_wh=12_500.0, stop_reason=None, tariffs=tariffs
    )
    second = await store.session_stopped(
        two, stopped_at=2_500.0, meter_stop_wh=13_000.0, stop_reason=None, tariffs=tariffs
    )
    assert (first.energy_kwh, first.revenue, first.currency) == (12.5, 3.75, "EUR")
    assert (second.owner, second.energy_kwh, second.revenue, second.currency) == (
        "fleet",
        8.0,
        2.0,
        "GBP",
    )
    assert [s.id for s in await store.sessions(owner="fleet")] == [two]
    assert [s.id for s in await store.sessions()] == [two, one]  # newest first


async def test_revenue_is_rounded_to_four_decimals(store: Store) -> None:
    session_id = await start_session(store, "1", meter_start_wh=0.0)
    stopped = await store.session_stopped(
        session_id,
        stopped_at=2_000.0,
        meter_stop_wh=7_777.0,
        stop_reason=None,
        tariffs={"a": (0.3333, "EUR")},
    )
    assert stopped.energy_kwh == 7.777
    assert stopped.revenue == 2.5921  # 2.59207...


async def test_no_revenue_without_a_tariff_or_an_energy(store: Store) -> None:
    untariffed = await start_session(store, "1", owner="nobody_pays", meter_start_wh=0.0)
    stopped = await store.session_stopped(
        untariffed,
        stopped_at=2.0,
        meter_stop_wh=1_000.0,
        stop_reason=None,
        tariffs={"a": (0.3, "EUR")},
    )
    assert (stopped.energy_kwh, stopped.revenue, stopped.currency) == (1.0, None, None)
    unmetered = await start_session(store, "2")
    stopped = await store.session_stopped(
        unmetered, stopped_at=2.0, meter_stop_wh=None, stop_reason=None, tariffs={"a": (0.3, "EUR")}
    )
    assert (stopped.energy_kwh, stopped.revenue, stopped.currency) == (None, None, None)


def test_energy_arithmetic_edge_cases() -> None:
    # Per-phase registers only: the rises are summed; a total is preferred when present.
    phases = [
        register(t, v, phase=p)
        for t, v, p in [(0, 100, "L1"), (0, 200, "L2"), (60, 1_100, "L1"), (60, 1_700, "L2")]
    ]
    assert register_rise_wh(phases) == 2_500.0
    assert register_rise_wh([*phases, register(0, 0), register(60, 40)]) == 40.0
    assert register_rise_wh([register(0, 5.0)]) is None  # one reading is no rise
    assert register_rise_wh([register(0, 1.0, "varh"), register(1, 2.0, "varh")]) is None
    assert session_energy_kwh(10_000.0, 9_000.0) is None  # a register that went backwards
    assert session_energy_kwh(0.1, 1_234.6) == 1.2345  # no float noise


async def test_a_session_is_started_once_and_stopped_once(store: Store) -> None:
    session_id = await start_session(store, "tx-1")
    assert await start_session(store, "tx-1", owner="other") == session_id
    first = await store.session_stopped(
        session_id, stopped_at=5.0, meter_stop_wh=None, stop_reason="Local", tariffs={}
    )
    again = await store.session_stopped(
        session_id, stopped_at=9.0, meter_stop_wh=1.0, stop_reason="Remote", tariffs={}
    )
    assert again == first
    assert await start_session(store, "tx-1") != session_id  # a new one once stopped


async def test_sessions_filters_and_paging(store: Store) -> None:
    ids = [
        await start_session(store, str(i), started_at=1_000.0 + i, cp_id=f"CP_{i % 2}")
        for i in range(6)
    ]
    assert [s.id for s in await store.sessions()] == ids[::-1]
    assert [s.id for s in await store.sessions(charge_point_id="CP_0")] == [ids[4], ids[2], ids[0]]
    assert [s.id for s in await store.sessions(since=1_002.0, until=1_004.0)] == [ids[3], ids[2]]
    assert [s.id for s in await store.sessions(limit=2, offset=1)] == [ids[4], ids[3]]
    assert await store.sessions(owner="none") == []
    with pytest.raises(ValueError):
        await store.sessions(limit=-1)


async def test_unknown_sessions_are_errors(store: Store) -> None:
    assert await store.session(404) is None
    with pytest.raises(StoreError, match="no session 404"):
        await store.session_set_owner(404, "a")
    with pytest.raises(StoreError, match="no session 404"):
        await store.session_set_backend_transaction(404, "a", "1")
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        await store.session_add_samples(404, [register(0, 1)])
    with pytest.raises(StoreError, match="no session 404"):
        await store.session_stopped(
            404, stopped_at=1.0, meter_stop_wh=1.0, stop_reason=None, tariffs={}
        )
    await start_session(store, "still-works")


# -- chargers and audit ----------------------------------------------------------------------


async def test_chargers_round_trip_and_are_offline_after_a_restart(
    store: Store, open_store: OpenStore
) -> None:
    await store.charger_connected(CP, 100.0)
    await store.charger_booted(
        CP, vendor="ACME", model="Wallbox", serial=None, firmware="1.2", at=101.0
    )
    store.charger_seen(CP, 150.0)
    store.charger_seen(CP, 140.0)  # older: ignored
    [charger] = await store.chargers()
    assert (charger.id, charger.vendor, charger.model, charger.serial, charger.firmware) == (
        CP,
        "ACME",
        "Wallbox",
        None,
        "1.2",
    )
    assert (charger.first_seen, charger.last_seen, charger.online) == (100.0, 150.0, True)

    store = await reopen(store, open_store)
    [charger] = await store.chargers()
    assert (charger.last_seen, charger.online) == (150.0, False)
    await store.charger_connected(CP, 200.0)
    await store.charger_disconnected(CP, 210.0)
    [charger] = await store.chargers()
    assert (charger.first_seen, charger.last_seen, charger.online) == (100.0, 210.0, False)


async def test_audit_entries_round_trip_newest_first(store: Store, open_store: OpenStore) -> None:
    # Recent: entries older than audit_log_days are pruned when the store opens.
    start = float(int(time.time()) - 60)
    for i, cp_id in enumerate([CP, "CP_2", CP]):
        await store.audit(
            cp_id,
            actor="fleet",
            action="RemoteStartTransaction",
            summary=f"start {i}",
            decision="refused" if i else "allowed",
            rule="presence",
            reason="nobody home" if i else None,
            answer='{"status":"Rejected"}',
            at=start + i,
        )
    store = await reopen(store, open_store)
    entries = await store.audit_entries()
    assert [e.summary for e in entries] == ["start 2", "start 1", "start 0"]
    newest = entries[0]
    assert (
        newest.charge_point_id,
        newest.at,
        newest.actor,
        newest.action,
        newest.decision,
        newest.rule,
        newest.reason,
        newest.answer,
    ) == (
        CP,
        start + 2,
        "fleet",
        "RemoteStartTransaction",
        "refused",
        "presence",
        "nobody home",
        '{"status":"Rejected"}',
    )
    assert [e.summary for e in await store.audit_entries(CP, limit=1)] == ["start 2"]


# -- message log -----------------------------------------------------------------------------


async def test_message_log_batches(store: Store, db_path: Path) -> None:
    log(store, 2_500)
    assert logged_frames(db_path) < 2_500  # buffered, not written one by one
    await store.flush()
    assert logged_frames(db_path) == 2_500
    rows = await store.messages(CP, limit=5_000)
    assert len(rows) == 2_500
    assert [r.unique_id for r in rows[:2]] == ["2499", "2498"]  # newest first
    assert store.frames_dropped == 0


async def test_message_log_rows(store: Store) -> None:
    frame = '[2,"ü1","DataTransfer",{"data":"€"}]'
    store.log_frame(
        CP,
        peer="energy_co",
        direction="out",
        message_type=2,
        action="DataTransfer",
        unique_id="ü1",
        frame=frame,
        at=1_700_000_000.25,
    )
    [row] = await store.messages(CP)  # flushes first
    assert (
        row.charge_point_id,
        row.peer,
        row.direction,
        row.message_type,
        row.action,
        row.unique_id,
        row.frame,
        row.at,
    ) == (
        CP,
        "energy_co",
        "out",
        2,
        "DataTransfer",
        "ü1",
        frame,
        1_700_000_000.25,
    )
    assert row.size == len(frame.encode()) == len(frame) + 3  # ü: 2 bytes, €: 3
    assert await store.messages("CP_other") == []
    store.log_frame(
        CP,
        peer="charger",
        direction="in",
        message_type=2,
        action=None,
        unique_id="2",
        frame='"\ud800"',
        at=1.0,
    )  # not UTF-8: escaped, kept
    assert (await store.messages(CP, limit=1))[0].frame == '"\\ud800"'
    with pytest.raises(ValueError, match="direction"):
        store.log_frame(
            CP,
            peer="x",
            direction="sideways",
            message_type=2,
            action=None,  # type: ignore[arg-type]
            unique_id="1",
            frame="[]",
            at=1.0,
        )


async def test_a_frame_holding_the_blocks_separators_is_kept_escaped(store: Store) -> None:
    # A malformed frame may hold any character; a unique id may hold an escaped control one.
    store.log_frame(
        CP,
        peer="charger",
        direction="in",
        message_type=2,
        action="A\x1fB",
        unique_id="u\x1e1",
        frame="[2,\x1e\x1f broken",
        at=5.0,
    )
    log(store, 1, start=7)  # its neighbour in the block stays whole
    newest, broken = await store.messages(CP)
    assert (broken.action, broken.unique_id, broken.frame) == (
        "A\\u001fB",
        "u\\u001e1",
        "[2,\\u001e\\u001f broken",
    )
    assert (broken.at, broken.size, newest.unique_id) == (5.0, 12, "7")  # the size as sent


async def test_the_background_writer_writes_a_full_batch_at_once(
    store: Store, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = asyncio.Event()
    original = write_behind.WriteBehind._write_batch

    async def observed(self: write_behind.WriteBehind) -> None:
        await original(self)
        written.set()

    monkeypatch.setattr(write_behind.WriteBehind, "_write_batch", observed)
    log(store, write_behind.BATCH_ROWS)
    await asyncio.wait_for(written.wait(), 5)  # no flush(): the writer did it
    assert logged_frames(db_path) == write_behind.BATCH_ROWS


async def test_close_writes_what_is_buffered(store: Store, open_store: OpenStore) -> None:
    log(store, 10)
    store.charger_seen(CP, 123.0)
    store = await reopen(store, open_store)
    assert len(await store.messages(CP)) == 10
    assert [c.last_seen for c in await store.chargers()] == [123.0]


async def test_message_log_retention_by_age(store: Store, open_store: OpenStore) -> None:
    now = time.time()
    log(store, 3, at=now - 8 * 86_400)
    log(store, 2, at=now - 6 * 86_400, start=3)
    assert await store.prune_message_log(now) == 3  # older than the default 7 days
    assert sorted(r.unique_id for r in await store.messages()) == ["3", "4"]
    await store.close()
    store = await open_store(message_log_days=5.0)  # pruned at open
    assert await store.messages() == []


async def test_message_log_retention_by_row_count(open_store: OpenStore) -> None:
    store = await open_store(message_log_max_rows=100)
    log(store, 250)
    assert await store.prune_message_log(time.time()) == 150
    rows = await store.messages(limit=1_000)
    assert [r.unique_id for r in rows] == [str(i) for i in range(249, 149, -1)]
    assert await store.prune_message_log(time.time()) == 0


async def test_retention_by_row_count_cuts_the_block_where_the_bound_falls(
    open_store: OpenStore,
) -> None:
    store = await open_store(message_log_max_rows=150)
    for batch in range(3):  # three blocks of 100 frames
        log(store, 100, start=100 * batch)
        await store.flush()
    ids_before = {r.unique_id: r.id for r in await store.messages(limit=1_000)}
    assert await store.prune_message_log(time.time()) == 150
    rows = await store.messages(limit=1_000)
    assert [r.unique_id for r in rows] == [str(i) for i in range(299, 149, -1)]
    assert all(r.id == ids_before[r.unique_id] for r in rows)  # ids kept across the cut
    log(store, 1, start=300)
    assert (await store.messages(limit=1))[0].id > max(ids_before.values())


async def test_a_full_buffer_drops_the_oldest_frames(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_behind, "MAX_BUFFERED_FRAMES", 10)
    log(store, 15)
    assert store.frames_dropped == 5
    assert [r.unique_id for r in await store.messages()] == [str(i) for i in range(14, 4, -1)]


async def test_retention_limits_are_checked(db_path: Path) -> None:
    with pytest.raises(ValueError):
        await Store.open(db_path, message_log_days=0)
    with pytest.raises(ValueError):
        await Store.open(db_path, message_log_max_rows=-1)


# -- lifecycle -------------------------------------------------------------------------------


async def test_a_closed_store_refuses_work(store: Store) -> None:
    await store.close()
    await store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        await store.allocate_transaction_id(CP)
    with pytest.raises(StoreError, match="closed"):
        await store.outbox_load(CP)
    log(store, 1)  # never raises: dropped
    assert store.frames_dropped == 1


async def test_async_with_closes(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await queue(store, "StartTransaction")
    assert store.closed


async def test_settings_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ocpp-proxy.sqlite3"
    store = await Store.open(path)
    assert await store.settings() == {}
    await store.set_setting("override", True)
    await store.set_setting("max_current_a", 16.0)
    await store.set_setting("max_current_a", None)
    await store.close()
    store = await Store.open(path)
    try:
        assert await store.settings() == {"override": True, "max_current_a": None}
    finally:
        await store.close()
