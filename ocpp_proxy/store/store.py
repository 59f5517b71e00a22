"""The durable store of the proxy: what must survive a crash, and the homeowner's records.

One SQLite file in the data dir (``ocpp-proxy.sqlite3``), see :mod:`.database` for the
durability guarantees and :mod:`.schema` for the tables. What is written through (committed
before the awaited call returns): the outbox of unconfirmed transaction messages per backend,
the OCPP 1.6 transaction-id map and its counter, sessions and their samples, chargers' connect
and boot records, the audit log. What is written behind (buffered, batched, may be lost in a
crash): the OCPP message log and chargers' last_seen.

All times in and out are Unix seconds (float, UTC); they are stored as REAL.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiosqlite

from ocpp_proxy.metering import ENERGY_REGISTER, session_energy_kwh
from ocpp_proxy.policy.authorization import HomeCard
from ocpp_proxy.security.redaction import mask_config_secrets
from ocpp_proxy.store.database import Database
from ocpp_proxy.store.energy import session_revenue
from ocpp_proxy.store.errors import StoreError
from ocpp_proxy.store.notify import TokenTable, WebhookTables
from ocpp_proxy.store.rows import (
    AuditRow,
    ChargerRow,
    EnergyTotal,
    FrameDirection,
    MessageRow,
    MeterSample,
    OutboxRow,
    SessionRow,
)
from ocpp_proxy.store.write_behind import WriteBehind

#: The first OCPP 1.6 transaction id of a charge point is the Unix time minus this (2024-01-01
#: 00:00:00 UTC), so that ids stay apart from those an in-memory proxy handed out earlier.
TRANSACTION_ID_EPOCH = 1_704_067_200

#: How many charger transactions :meth:`Store.transaction_id_map` loads (the newest).
TRANSACTION_ID_MAP_SIZE = 512


_TRANSACTION_ID_COUNTER = "transaction_id"

_CHARGER_COLUMNS = "id, vendor, model, serial, firmware, first_seen, last_seen, online"
_OUTBOX_COLUMNS = "id, backend_id, action, frame, transaction_id, created_at"
_SESSION_COLUMNS = (
    "id, charge_point_id, connector_id, evse_id, transaction_id, owner, id_tag, started_at, "
    "stopped_at, meter_start_wh, meter_stop_wh, energy_kwh, stop_reason, revenue, currency"
)
_SAMPLE_COLUMNS = "at, measurand, phase, value, unit, context"
_AUDIT_COLUMNS = "id, charge_point_id, at, actor, action, summary, decision, rule, reason, answer"

#: SQL of the period a session's start falls in (local time), by period name.
_PERIOD_BUCKETS = {
    "day": "date(started_at, 'unixepoch', 'localtime')",
    "week": "date(started_at, 'unixepoch', 'localtime', '-6 days', 'weekday 1')",
    "month": "strftime('%Y-%m', started_at, 'unixepoch', 'localtime')",
}


class Store:
    """The proxy's durable storage: one SQLite file, one connection.

    Open with :meth:`open`, close with :meth:`close` (or ``async with``). Every awaited write
    is one transaction, committed when the call returns; concurrent callers are serialised
    (never mixed in one transaction), and a caller cancelled mid-call does not tear its write.
    Methods raise :class:`StoreError` when SQLite fails or the store is closed.
    """

    def __init__(self, db: Database, write_behind: WriteBehind) -> None:
        self._db = db
        self._behind = write_behind

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        message_log_days: float = 7.0,
        message_log_max_rows: int = 500_000,
        message_log_max_bytes: int = 200 * 2**20,
        audit_log_days: float = 90.0,
    ) -> Store:
        """Open the database at ``path``: create it (mode 0o600) or upgrade its schema.

        Also marks every charger offline (no charger is connected to a process that just
        started), prunes the message log, and starts the background writer.

        Args:
            path: the database file, e.g. ``<data dir>/ocpp-proxy.sqlite3``; its directory
                must exist.
            message_log_days: how long logged frames are kept (days, > 0).
            message_log_max_rows: most logged frames kept (>= 0).
            message_log_max_bytes: most bytes of frame text the message log keeps (>= 0).
            audit_log_days: how long audit entries are kept (days, > 0).

        Returns:
            The open store.

        Raises:
            StoreError: the file cannot be created or opened, is not an SQLite database, has
                a newer schema than this ocpp-proxy supports, or a migration failed.
            ValueError: a retention limit is out of range.
        """
        if not message_log_days > 0:
            raise ValueError(f"message_log_days must be > 0, got {message_log_days}")
        if message_log_max_rows < 0:
            raise ValueError(f"message_log_max_rows must be >= 0, got {message_log_max_rows}")
        if not audit_log_days > 0:
            raise ValueError(f"audit_log_days must be > 0, got {audit_log_days}")
        db = await Database.open(path)
        behind = WriteBehind(
            db,
            message_log_days=message_log_days,
            message_log_max_rows=message_log_max_rows,
            message_log_max_bytes=message_log_max_bytes,
            audit_log_days=audit_log_days,
        )
        try:
            await db.write("marking chargers offline", _all_offline)
            await behind.prune(time.time())
        except BaseException:
            await db.close()
            raise
        behind.start()
        return cls(db, behind)

    async def close(self) -> None:
        """Write what is buffered, wait for writes under way, and close the file (idempotent).

        Raises:
            StoreError: the last buffered rows could not be written (the file is closed anyway).
        """
        if self._db.closed:
            return
        try:
            await self._behind.close()
        finally:
            await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def path(self) -> str:
        """The database file's path."""
        return str(self._db.path)

    @property
    def closed(self) -> bool:
        """Whether the store was closed."""
        return self._db.closed

    @property
    def webhooks(self) -> WebhookTables:
        """The webhooks and their delivery queue."""
        return WebhookTables(self._db)

    @property
    def tokens(self) -> TokenTable:
        """The API tokens made through the API (hashed)."""
        return TokenTable(self._db)

    # -- chargers ----------------------------------------------------------------------

    async def charger_connected(self, cp_id: str, at: float) -> None:
        """Record that charge point ``cp_id`` connected at ``at`` (Unix s): it is online.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        await self._upsert_charger(cp_id, at, online=True)

    async def charger_disconnected(self, cp_id: str, at: float) -> None:
        """Record that charge point ``cp_id`` disconnected at ``at`` (Unix s): it is offline.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        await self._upsert_charger(cp_id, at, online=False)

    async def charger_booted(
        self,
        cp_id: str,
        *,
        vendor: str,
        model: str,
        serial: str | None,
        firmware: str | None,
        at: float,
    ) -> None:
        """Record a BootNotification of ``cp_id`` at ``at`` (Unix s); the charger is online.

        Args:
            cp_id: the charge point id.
            vendor: ``chargePointVendor`` (1.6) / ``chargingStation.vendorName`` (2.x).
            model: ``chargePointModel`` / ``chargingStation.model``.
            serial: the serial number, if the charger gave one.
            firmware: the firmware version, if the charger gave one.
            at: when the charger booted (Unix s).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO chargers "
                "(id, vendor, model, serial, firmware, first_seen, last_seen, online) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (id) DO UPDATE SET "
                "vendor = excluded.vendor, model = excluded.model, serial = excluded.serial, "
                "firmware = excluded.firmware, online = 1, "
                "last_seen = max(last_seen, excluded.last_seen)",
                [cp_id, vendor, model, serial, firmware, at, at],
            )

        await self._db.write("recording a boot", write)

    def charger_seen(self, cp_id: str, at: float) -> None:
        """Note that ``cp_id`` was heard from at ``at`` (Unix s). Synchronous and cheap.

        Kept in memory and written with the next message log batch (within about 0.5 s, or
        by :meth:`flush`); a charger not yet recorded is added as online.
        """
        self._behind.charger_seen(cp_id, at)

    async def charger_known(self, cp_id: str) -> bool:
        """Whether ``cp_id`` was ever seen (has a row in ``chargers``), buffered sightings included.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        if self._behind.seen_pending(cp_id):
            return True

        async def read(connection: aiosqlite.Connection) -> bool:
            rows = await connection.execute_fetchall("SELECT 1 FROM chargers WHERE id = ?", [cp_id])
            return bool(rows)

        return await self._db.read("reading chargers", read)

    async def chargers(self) -> list[ChargerRow]:
        """Return every charge point ever seen, by id (flushes buffered last_seen first).

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        await self.flush()

        async def read(connection: aiosqlite.Connection) -> list[ChargerRow]:
            rows = await connection.execute_fetchall(
                f"SELECT {_CHARGER_COLUMNS} FROM chargers ORDER BY id"
            )
            return [_charger_row(row) for row in rows]

        return await self._db.read("reading chargers", read)

    async def _upsert_charger(self, cp_id: str, at: float, *, online: bool) -> None:
        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO chargers (id, first_seen, last_seen, online) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET online = excluded.online, "
                "last_seen = max(last_seen, excluded.last_seen)",
                [cp_id, at, at, int(online)],
            )

        await self._db.write("recording a charger", write)

    # -- settings ------------------------------------------------------------------------

    async def settings(self) -> dict[str, Any]:
        """The homeowner's settings kept across restarts (key -> JSON value).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> dict[str, Any]:
            async with connection.execute("SELECT key, value FROM settings") as cursor:
                return {key: json.loads(value) for key, value in await cursor.fetchall()}

        return await self._db.read("reading settings", read)

    async def set_setting(self, key: str, value: Any) -> None:
        """Keep ``key`` = ``value`` (any JSON value), committed before it returns.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                [key, json.dumps(value), time.time()],
            )

        await self._db.write("saving a setting", write)

    # -- cards -------------------------------------------------------------------------

    async def home_cards(self) -> list[HomeCard]:
        """The homeowner's cards added through the REST API, by id tag.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> list[HomeCard]:
            rows = await connection.execute_fetchall(
                "SELECT id_tag, name, expires_at FROM home_cards ORDER BY id_tag"
            )
            return [HomeCard(row[0], row[1], row[2], "api") for row in rows]

        return await self._db.read("reading the home cards", read)

    async def save_home_card(self, card: HomeCard) -> None:
        """Add (or replace) a home card, committed before it returns.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO home_cards (id_tag, name, expires_at, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (id_tag) DO UPDATE SET name = excluded.name, "
                "expires_at = excluded.expires_at",
                [card.id_tag, card.name, card.expires_at, time.time()],
            )

        await self._db.write("saving a home card", write)

    async def delete_home_card(self, id_tag: str) -> bool:
        """Remove a home card, committed; False if there was none with ``id_tag``.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> bool:
            cursor = await connection.execute("DELETE FROM home_cards WHERE id_tag = ?", [id_tag])
            return cursor.rowcount > 0

        return await self._db.write("removing a home card", write)

    async def cards_accepted(self, rows: Sequence[tuple[str, str, float]]) -> None:
        """Remember, in one transaction, that backends accepted cards: (card, backend, Unix s).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.executemany(
                "INSERT INTO known_cards (id_tag, backend_id, accepted_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id_tag, backend_id) DO UPDATE SET "
                "accepted_at = max(accepted_at, excluded.accepted_at)",
                [list(row) for row in rows],
            )

        await self._db.write("remembering accepted cards", write)

    async def card_known_by(self, id_tag: str, since: float) -> str | None:
        """The backend that accepted ``id_tag`` most recently at or after ``since``, or None.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> str | None:
            value = await _scalar(
                connection,
                "SELECT backend_id FROM known_cards WHERE id_tag = ? AND accepted_at >= ? "
                "ORDER BY accepted_at DESC LIMIT 1",
                [id_tag, since],
            )
            return None if value is None else str(value)

        return await self._db.read("looking up a known card", read)

    # -- OCPP 1.6 transaction ids ------------------------------------------------------

    async def allocate_transaction_id(self, cp_id: str) -> int:
        """Return a new charger-side OCPP 1.6 transaction id for ``cp_id``, committed.

        The first id of a charge point is ``int(time.time()) - 1_704_067_200``; each call
        after returns the previous plus one, across restarts. The id is also remembered as
        known (see :meth:`transaction_id_map`) before any backend assigned its own.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        now = time.time()

        async def write(connection: aiosqlite.Connection) -> int:
            value = await _scalar(
                connection,
                "SELECT next_value FROM counters WHERE charge_point_id = ? AND name = ?",
                [cp_id, _TRANSACTION_ID_COUNTER],
            )
            if value is None:
                # No counter yet: start from the clock, but never at an id handed out before.
                highest = await _scalar(
                    connection,
                    "SELECT max(transaction_id) FROM transaction_ids WHERE charge_point_id = ?",
                    [cp_id],
                )
                value = int(now) - TRANSACTION_ID_EPOCH
                if highest is not None:
                    value = max(value, int(highest) + 1)
            value = int(value)
            await connection.execute(
                "INSERT INTO counters (charge_point_id, name, next_value) VALUES (?, ?, ?) "
                "ON CONFLICT (charge_point_id, name) "
                "DO UPDATE SET next_value = excluded.next_value",
                [cp_id, _TRANSACTION_ID_COUNTER, value + 1],
            )
            await connection.execute(
                "INSERT INTO transaction_ids (charge_point_id, transaction_id, allocated_at) "
                "VALUES (?, ?, ?)",
                [cp_id, value, now],
            )
            return value

        return await self._db.write("allocating a transaction id", write)

    async def record_backend_transaction_id(
        self,
        cp_id: str,
        charger_transaction_id: int,
        backend_id: str,
        backend_transaction_id: int,
    ) -> None:
        """Remember, committed, the id ``backend_id`` assigned to a charger transaction.

        Args:
            cp_id: the charge point id.
            charger_transaction_id: the id the proxy gave the charger.
            backend_id: the backend's config id.
            backend_transaction_id: the id in that backend's StartTransaction.conf; replaces
                an earlier one of the same backend.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        now = time.time()

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT OR IGNORE INTO transaction_ids "
                "(charge_point_id, transaction_id, allocated_at) VALUES (?, ?, ?)",
                [cp_id, charger_transaction_id, now],
            )
            await connection.execute(
                "INSERT INTO transaction_id_backends "
                "(charge_point_id, transaction_id, backend_id, backend_transaction_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (charge_point_id, transaction_id, backend_id) "
                "DO UPDATE SET backend_transaction_id = excluded.backend_transaction_id",
                [cp_id, charger_transaction_id, backend_id, backend_transaction_id],
            )

        await self._db.write("recording a backend transaction id", write)

    async def transaction_id_map(
        self, cp_id: str, *, limit: int = TRANSACTION_ID_MAP_SIZE
    ) -> dict[int, dict[str, int]]:
        """Return the transaction-id map of ``cp_id`` to load at start.

        Args:
            cp_id: the charge point id.
            limit: how many of the newest charger transactions to return.

        Returns:
            Charger transaction id -> {backend id: that backend's transaction id}, oldest
            first; a transaction no backend has answered yet maps to ``{}``.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> dict[int, dict[str, int]]:
            rows = await connection.execute_fetchall(
                "SELECT t.transaction_id, b.backend_id, b.backend_transaction_id FROM "
                "(SELECT transaction_id FROM transaction_ids WHERE charge_point_id = ? "
                " ORDER BY transaction_id DESC LIMIT ?) AS t "
                "LEFT JOIN transaction_id_backends AS b "
                "ON b.charge_point_id = ? AND b.transaction_id = t.transaction_id "
                "ORDER BY t.transaction_id, b.backend_id",
                [cp_id, limit, cp_id],
            )
            result: dict[int, dict[str, int]] = {}
            for charger_id, backend_id, backend_tx in rows:
                ids = result.setdefault(int(charger_id), {})
                if backend_id is not None:
                    ids[backend_id] = int(backend_tx)
            return result

        return await self._db.read("reading transaction ids", read)

    # -- outbox ------------------------------------------------------------------------

    async def outbox_add(
        self,
        cp_id: str,
        *,
        backend_ids: Sequence[str],
        action: str,
        frame: str,
        transaction_id: int | None,
        at: float,
    ) -> dict[str, int]:
        """Queue one charger CALL for each of ``backend_ids``, in one committed transaction.

        Call this before answering the charger: once it returns, the message survives a
        crash of the proxy.

        Args:
            cp_id: the charge point id.
            backend_ids: the backends that must receive it (repeats are ignored).
            action: the CALL's action, e.g. ``StartTransaction``.
            frame: the OCPP-J text as the charger sent it.
            transaction_id: the charger-side 1.6 transaction id it refers to, or None.
            at: when it was received (Unix s).

        Returns:
            Backend id -> the new row id (ids grow in insertion order and are never reused).

        Raises:
            StoreError: the database failed (nothing was queued), or the store is closed.
        """
        targets = list(dict.fromkeys(backend_ids))
        if not targets:
            return {}

        async def write(connection: aiosqlite.Connection) -> dict[str, int]:
            ids: dict[str, int] = {}
            for backend_id in targets:
                cursor = await connection.execute(
                    "INSERT INTO outbox (charge_point_id, backend_id, action, frame, "
                    "transaction_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [cp_id, backend_id, action, frame, transaction_id, at],
                )
                ids[backend_id] = _row_id(cursor)
            return ids

        return await self._db.write("queueing a message", write)

    async def outbox_remove(self, row_id: int) -> bool:
        """Delete outbox row ``row_id`` (its backend answered it), committed.

        Returns:
            Whether the row was there.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> bool:
            cursor = await connection.execute("DELETE FROM outbox WHERE id = ?", [row_id])
            return cursor.rowcount > 0

        return await self._db.write("removing a queued message", write)

    async def outbox_load(self, cp_id: str) -> dict[str, list[OutboxRow]]:
        """Return what is queued for ``cp_id``: backend id -> its rows in insertion order.

        Backends are in the order of their oldest row; a backend with nothing queued is absent.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> dict[str, list[OutboxRow]]:
            rows = await connection.execute_fetchall(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE charge_point_id = ? ORDER BY id",
                [cp_id],
            )
            queues: dict[str, list[OutboxRow]] = {}
            for row in rows:
                queues.setdefault(row["backend_id"], []).append(OutboxRow(*row))
            return queues

        return await self._db.read("loading the outbox", read)

    async def outbox_charge_point_ids(self) -> list[str]:
        """Return the charge points with anything queued, sorted (hubs to restore at start).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> list[str]:
            rows = await connection.execute_fetchall(
                "SELECT DISTINCT charge_point_id FROM outbox ORDER BY charge_point_id"
            )
            return [row[0] for row in rows]

        return await self._db.read("reading the outbox", read)

    async def outbox_depths(self, cp_id: str) -> dict[str, int]:
        """Return how many rows are queued for each backend of ``cp_id`` (absent: none).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> dict[str, int]:
            rows = await connection.execute_fetchall(
                "SELECT backend_id, count(*) FROM outbox WHERE charge_point_id = ? "
                "GROUP BY backend_id ORDER BY backend_id",
                [cp_id],
            )
            return {row[0]: int(row[1]) for row in rows}

        return await self._db.read("reading the outbox", read)

    # -- the charger's state, replayed to late backends ---------------------------------

    async def replay_put(self, cp_id: str, key: str, frame: str, at: float) -> None:
        """Keep ``frame`` as the charger's last state message of ``key``, committed.

        Args:
            cp_id: the charge point id.
            key: ``boot``, or ``status:<connector>`` (see ``ocpp_proxy.protocol.messages``).
            frame: the OCPP-J text as the charger sent it.
            at: when it was received (Unix s).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO charger_state (charge_point_id, key, frame, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (charge_point_id, key) DO UPDATE SET frame = excluded.frame, "
                "at = excluded.at",
                [cp_id, key, frame, at],
            )

        await self._db.write("keeping the charger's state", write)

    async def replay_clear(self, cp_id: str) -> None:
        """Forget every kept state message of ``cp_id``, committed.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute("DELETE FROM charger_state WHERE charge_point_id = ?", [cp_id])

        await self._db.write("forgetting the charger's state", write)

    async def replay_load(self, cp_id: str) -> dict[str, str]:
        """Return the charger's kept state messages: key -> frame, boot first.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> dict[str, str]:
            rows = await connection.execute_fetchall(
                "SELECT key, frame FROM charger_state WHERE charge_point_id = ? "
                "ORDER BY key != 'boot', at",
                [cp_id],
            )
            return {row[0]: row[1] for row in rows}

        return await self._db.read("reading the charger's state", read)

    # -- translated backend links --------------------------------------------------------

    async def translation_put(
        self, cp_id: str, backend_id: str, transaction_id: str, state: dict[str, Any] | None
    ) -> None:
        """Keep (or, with ``state`` None, forget) a running transaction's translation state.

        Args:
            cp_id: the charge point id.
            backend_id: the translated backend's config id.
            transaction_id: the 2.x transaction id (the one the backend or the station names).
            state: JSON-able (see ``ocpp_proxy.translation.state``), or None when it ended.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            if state is None:
                await connection.execute(
                    "DELETE FROM translation_state WHERE charge_point_id = ? AND backend_id = ? "
                    "AND transaction_id = ?",
                    [cp_id, backend_id, transaction_id],
                )
                return
            await connection.execute(
                "INSERT INTO translation_state (charge_point_id, backend_id, transaction_id, "
                "state, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                "(charge_point_id, backend_id, transaction_id) DO UPDATE SET "
                "state = excluded.state, at = excluded.at",
                [cp_id, backend_id, transaction_id, json.dumps(state), time.time()],
            )

        await self._db.write("keeping a translation's state", write)

    async def translation_load(self, cp_id: str) -> dict[str, dict[str, dict[str, Any]]]:
        """Return the kept translation states: backend id -> {transaction id: state}, oldest first.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> dict[str, dict[str, dict[str, Any]]]:
            rows = await connection.execute_fetchall(
                "SELECT backend_id, transaction_id, state FROM translation_state "
                "WHERE charge_point_id = ? ORDER BY at",
                [cp_id],
            )
            kept: dict[str, dict[str, dict[str, Any]]] = {}
            for backend_id, transaction_id, state in rows:
                with contextlib.suppress(ValueError):
                    kept.setdefault(backend_id, {})[transaction_id] = json.loads(state)
            return kept

        return await self._db.read("reading translation states", read)

    # -- sessions ----------------------------------------------------------------------

    async def session_started(
        self,
        cp_id: str,
        *,
        transaction_id: str,
        connector_id: int | None,
        evse_id: int | None,
        id_tag: str | None,
        meter_start_wh: float | None,
        started_at: float,
        owner: str | None,
    ) -> int:
        """Record a new open session, committed, and return its id.

        If ``cp_id`` already has an open session with ``transaction_id`` (a repeated
        TransactionEvent Started, say), that session's id is returned and nothing changes.

        Args:
            cp_id: the charge point id.
            transaction_id: the id the charger uses for the transaction (1.6: the proxy's id
                as text).
            connector_id: the connector (1.6, or 2.x's ``evse.connectorId``), if known.
            evse_id: the EVSE (2.x), if known.
            id_tag: the idTag / idToken that started it, if any.
            meter_start_wh: the energy register at the start (Wh), if known.
            started_at: when it started (Unix s).
            owner: the backend the session is attributed to, or None.

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> int:
            existing = await _scalar(
                connection,
                "SELECT id FROM sessions WHERE charge_point_id = ? AND transaction_id = ? "
                "AND stopped_at IS NULL",
                [cp_id, transaction_id],
            )
            if existing is not None:
                return int(existing)
            cursor = await connection.execute(
                "INSERT INTO sessions (charge_point_id, connector_id, evse_id, transaction_id, "
                "owner, id_tag, started_at, meter_start_wh) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    cp_id,
                    connector_id,
                    evse_id,
                    transaction_id,
                    owner,
                    id_tag,
                    started_at,
                    meter_start_wh,
                ],
            )
            return _row_id(cursor)

        return await self._db.write("recording a session start", write)

    async def session_set_owner(self, session_id: int, owner: str | None) -> None:
        """Attribute session ``session_id`` to backend ``owner`` (None: nobody), committed.

        Raises:
            StoreError: there is no such session, the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            cursor = await connection.execute(
                "UPDATE sessions SET owner = ? WHERE id = ?", [owner, session_id]
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no session {session_id}")

        await self._db.write("setting a session's owner", write)

    async def session_set_backend_transaction(
        self, session_id: int, backend_id: str, backend_transaction_id: str
    ) -> None:
        """Remember, committed, the transaction id ``backend_id`` gave session ``session_id``.

        Raises:
            StoreError: there is no such session, the database failed, or the store is closed.
        """

        async def write(connection: aiosqlite.Connection) -> None:
            await _require_session(connection, session_id)
            await connection.execute(
                "INSERT INTO session_backends (session_id, backend_id, backend_transaction_id) "
                "VALUES (?, ?, ?) ON CONFLICT (session_id, backend_id) "
                "DO UPDATE SET backend_transaction_id = excluded.backend_transaction_id",
                [session_id, backend_id, backend_transaction_id],
            )

        await self._db.write("recording a backend's session id", write)

    async def session_add_samples(self, session_id: int, samples: Sequence[MeterSample]) -> None:
        """Store meter samples of session ``session_id``, all in one committed transaction.

        Raises:
            StoreError: there is no such session, the database failed, or the store is closed.
        """
        if not samples:
            return
        values = [
            [session_id, s.at, s.measurand, s.phase, float(s.value), s.unit, s.context]
            for s in samples
        ]

        async def write(connection: aiosqlite.Connection) -> None:
            # No look-up first: the foreign key refuses a sample of an unknown session.
            await connection.executemany(
                f"INSERT INTO meter_samples (session_id, {_SAMPLE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )

        await self._db.write("storing meter samples", write)

    async def session_stopped(
        self,
        session_id: int,
        *,
        stopped_at: float,
        meter_stop_wh: float | None,
        stop_reason: str | None,
        tariffs: Mapping[str, tuple[float, str]],
    ) -> SessionRow:
        """Close session ``session_id`` with its energy and revenue, committed.

        ``energy_kwh`` is ``(meter_stop_wh - meter_start_wh) / 1000`` when both are known,
        else the rise of the session's ``Energy.Active.Import.Register`` samples (kWh samples
        converted to Wh); see :mod:`.energy`. When the owner has a tariff, ``revenue`` is
        ``energy_kwh * rate`` rounded to 4 decimals, in the tariff's currency. A session that
        was already stopped is returned unchanged (the first stop counts).

        Args:
            session_id: the session.
            stopped_at: when it stopped (Unix s).
            meter_stop_wh: the energy register at the stop (Wh), if known.
            stop_reason: the charger's reason (e.g. ``EVDisconnected``), if any.
            tariffs: backend id -> (price per kWh, currency code).

        Returns:
            The stopped session.

        Raises:
            StoreError: there is no such session, the database failed, or the store is closed.
        """
        tariffs = types.MappingProxyType(dict(tariffs))

        async def write(connection: aiosqlite.Connection) -> SessionRow:
            session = await _session(connection, session_id)
            if session is None:
                raise StoreError(f"no session {session_id}")
            if session.stopped_at is not None:
                return session
            samples: list[MeterSample] = []
            if session.meter_start_wh is None or meter_stop_wh is None:
                samples = await _samples(connection, session_id, ENERGY_REGISTER)
            energy = session_energy_kwh(session.meter_start_wh, meter_stop_wh, samples)
            revenue, currency = session_revenue(energy, session.owner, tariffs)
            await connection.execute(
                "UPDATE sessions SET stopped_at = ?, meter_stop_wh = ?, stop_reason = ?, "
                "energy_kwh = ?, revenue = ?, currency = ? WHERE id = ?",
                [stopped_at, meter_stop_wh, stop_reason, energy, revenue, currency, session_id],
            )
            stopped = await _session(connection, session_id)
            assert stopped is not None  # just updated, same transaction
            return stopped

        return await self._db.write("recording a session stop", write)

    async def open_session(self, cp_id: str, transaction_id: str) -> SessionRow | None:
        """Return the open session of ``cp_id`` with ``transaction_id``, or None.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        rows = await self._sessions(
            "WHERE charge_point_id = ? AND transaction_id = ? AND stopped_at IS NULL",
            [cp_id, transaction_id],
        )
        return rows[0] if rows else None

    async def open_sessions(self, cp_id: str) -> list[SessionRow]:
        """Return the open sessions of ``cp_id``, oldest first.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        return await self._sessions(
            "WHERE charge_point_id = ? AND stopped_at IS NULL ORDER BY started_at, id", [cp_id]
        )

    async def session(self, session_id: int) -> SessionRow | None:
        """Return session ``session_id``, or None if there is none.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        rows = await self._sessions("WHERE id = ?", [session_id])
        return rows[0] if rows else None

    async def session_samples(self, session_id: int) -> list[MeterSample]:
        """Return the meter samples of session ``session_id`` by time (then insertion).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> list[MeterSample]:
            return await _samples(connection, session_id)

        return await self._db.read("reading meter samples", read)

    async def sessions(
        self,
        *,
        charge_point_id: str | None = None,
        owner: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        offset: int = 0,
        backend: str | None = None,
    ) -> list[SessionRow]:
        """Return sessions, newest start first.

        Args:
            charge_point_id: only this charge point's.
            owner: only those attributed to this backend.
            backend: only those this backend took part in (it owns the session or assigned
                a transaction id to it).
            since: only those started at or after this Unix time (s).
            until: only those started before this Unix time (s).
            limit: most rows returned (>= 0).
            offset: rows skipped first (>= 0), for paging.

        Raises:
            StoreError: the database failed, or the store is closed.
            ValueError: ``limit`` or ``offset`` is negative.
        """
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got {limit}, {offset}")
        conditions: list[str] = []
        params: list[Any] = []
        for condition, value in (
            ("charge_point_id = ?", charge_point_id),
            ("owner = ?", owner),
            ("started_at >= ?", since),
            ("started_at < ?", until),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        if backend is not None:
            conditions.append(
                "(owner = ? OR id IN "
                "(SELECT session_id FROM session_backends WHERE backend_id = ?))"
            )
            params.extend([backend, backend])
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return await self._sessions(
            f"{where} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    async def latest_session(self, cp_id: str, transaction_id: str) -> SessionRow | None:
        """The newest session of ``cp_id`` with ``transaction_id``, or None.

        Read in the write queue, so it sees every write issued before it (a stop that the
        relay has just recorded, say).

        Raises:
            StoreError: the database failed, or the store is closed.
        """

        async def read(connection: aiosqlite.Connection) -> list[SessionRow]:
            return await _select_sessions(
                connection,
                "WHERE charge_point_id = ? AND transaction_id = ? ORDER BY id DESC LIMIT 1",
                [cp_id, transaction_id],
            )

        rows = await self._db.write("reading a session", read)
        return rows[0] if rows else None

    async def _sessions(self, clauses: str, params: Sequence[Any]) -> list[SessionRow]:
        async def read(connection: aiosqlite.Connection) -> list[SessionRow]:
            return await _select_sessions(connection, clauses, params)

        return await self._db.read("reading sessions", read)

    async def energy_totals(
        self,
        period: str = "day",
        *,
        since: float | None = None,
        until: float | None = None,
        charge_point_id: str | None = None,
    ) -> list[EnergyTotal]:
        """Energy, revenue and session count of finished sessions per period, charger and owner.

        Periods are local calendar days (``YYYY-MM-DD``), weeks (the date of their Monday)
        or months (``YYYY-MM``) of the session's start, in the proxy's local time zone.

        Args:
            period: ``day``, ``week`` or ``month``.
            since: only sessions started at or after this Unix time (s).
            until: only sessions started before this Unix time (s).
            charge_point_id: only this charge point's.

        Raises:
            StoreError: the database failed, or the store is closed.
            ValueError: ``period`` is none of the above.
        """
        bucket = _PERIOD_BUCKETS.get(period)
        if bucket is None:
            raise ValueError(f"period must be day, week or month, got {period!r}")
        conditions = ["stopped_at IS NOT NULL"]
        params: list[Any] = []
        for condition, value in (
            ("charge_point_id = ?", charge_point_id),
            ("started_at >= ?", since),
            ("started_at < ?", until),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)

        async def read(connection: aiosqlite.Connection) -> list[EnergyTotal]:
            rows = await connection.execute_fetchall(
                f"SELECT {bucket} AS period, charge_point_id, owner, COUNT(*), "
                "COALESCE(SUM(energy_kwh), 0), SUM(revenue), MAX(currency) FROM sessions "
                f"WHERE {' AND '.join(conditions)} "
                "GROUP BY period, charge_point_id, owner ORDER BY period, charge_point_id, owner",
                params,
            )
            return [EnergyTotal(*row) for row in rows]

        return await self._db.read("reading energy totals", read)

    # -- audit log ---------------------------------------------------------------------

    async def audit(
        self,
        cp_id: str | None,
        *,
        actor: str,
        action: str,
        summary: str,
        decision: str,
        rule: str | None,
        reason: str | None,
        answer: str | None,
        at: float,
    ) -> int:
        """Append an audit entry, committed, and return its id.

        Args:
            cp_id: the charge point concerned, or None for the proxy as a whole.
            actor: who asked (a backend id, ``homeowner``, ...).
            action: what was asked (the OCPP action).
            summary: one line for people.
            decision: what was decided, e.g. ``allowed`` or ``refused``.
            rule: the rule that decided, if any.
            reason: why, if given.
            answer: what the requester was answered, if anything.
            at: when (Unix s).

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        # The entry may quote a command that sets a charger password (issue 16).
        summary = mask_config_secrets(summary)
        answer = mask_config_secrets(answer) if answer is not None else None

        async def write(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                "INSERT INTO audit_log (charge_point_id, at, actor, action, summary, decision, "
                "rule, reason, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [cp_id, at, actor, action, summary, decision, rule, reason, answer],
            )
            return _row_id(cursor)

        return await self._db.write("writing the audit log", write)

    async def audit_entries(self, cp_id: str | None = None, limit: int = 100) -> list[AuditRow]:
        """Return audit entries, newest first.

        Args:
            cp_id: only this charge point's; None: all.
            limit: most rows returned (>= 0).

        Raises:
            StoreError: the database failed, or the store is closed.
            ValueError: ``limit`` is negative.
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        where, params = ("WHERE charge_point_id = ?", [cp_id]) if cp_id is not None else ("", [])

        async def read(connection: aiosqlite.Connection) -> list[AuditRow]:
            rows = await connection.execute_fetchall(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log {where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
            return [AuditRow(*row) for row in rows]

        return await self._db.read("reading the audit log", read)

    # -- message log -------------------------------------------------------------------

    def log_frame(
        self,
        cp_id: str,
        *,
        peer: str,
        direction: FrameDirection,
        message_type: int,
        action: str | None,
        unique_id: str,
        frame: str,
        at: float,
    ) -> None:
        """Log one OCPP-J frame; synchronous, never blocks.

        The frame is buffered as it is and written by the background task within about 0.5 s
        (at once when 1000 frames are waiting), or by :meth:`flush`; masking, cutting and
        sizing happen there. Frames buffered when the process dies are lost; past 100,000
        buffered frames the oldest are dropped (:attr:`frames_dropped`).

        Args:
            cp_id: the charge point the frame belongs to.
            peer: the other end: ``charger`` or a backend id.
            direction: ``"in"`` (received by the proxy) or ``"out"`` (sent by it).
            message_type: the OCPP-J message type (2 CALL, 3 CALLRESULT, 4 CALLERROR, ...).
            action: the CALL's action (None for answers, unless the caller knows it).
            unique_id: the frame's unique id.
            frame: the frame's text; its UTF-8 length is stored as the size (bytes).
            at: when it passed (Unix s).

        Raises:
            ValueError: ``direction`` is neither ``"in"`` nor ``"out"``.
        """
        self._behind.log_frame(
            cp_id,
            peer=peer,
            direction=direction,
            message_type=message_type,
            action=action,
            unique_id=unique_id,
            frame=frame,
            at=at,
        )

    def frame_logger(
        self,
    ) -> Callable[[tuple[str, float, str, str, int, str | None, str, str]], None]:
        """:meth:`log_frame` for the relay's path: a function taking one positional tuple.

        The tuple is (charge point id, at, peer, direction, message type, action, unique id,
        frame text), as the arguments of :meth:`log_frame`; ``direction`` is not checked.
        """
        return self._behind.append

    async def flush(self) -> None:
        """Write every buffered message-log row and last_seen; return once committed.

        Raises:
            StoreError: a batch could not be written (its rows are lost), or the store is
                closed.
        """
        await self._behind.flush()

    async def messages(self, cp_id: str | None = None, limit: int = 100) -> list[MessageRow]:
        """Return logged frames, newest first; flushes the buffer first.

        Args:
            cp_id: only this charge point's; None: all.
            limit: most rows returned (>= 0).

        Raises:
            StoreError: the database failed, or the store is closed.
            ValueError: ``limit`` is negative.
        """
        return await self._behind.messages(cp_id, limit)

    async def prune_message_log(self, now: float) -> int:
        """Delete old logged frames: by age, then beyond the row limit; flushes first.

        Deletes rows older than ``message_log_days`` before ``now`` (Unix s), then the oldest
        beyond ``message_log_max_rows``. Runs at open and hourly in the background.

        Returns:
            How many rows were deleted.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        return await self._behind.prune(now)

    @property
    def frames_dropped(self) -> int:
        """How many frames the message log lost (buffer overflow, failed writes, closed)."""
        return self._behind.frames_dropped

    def message_log_counts(self) -> dict[str, int]:
        """The message log's frame counts since the start, for ``/status`` and the metrics.

        ``logged``: frames handed to it; ``buffered``: waiting in memory to be written;
        ``dropped``: lost (buffer over its bound, a failed write, the store closed).
        """
        behind = self._behind
        return {
            "logged": behind.frames_logged,
            "buffered": behind.frames_buffered,
            "dropped": behind.frames_dropped,
        }


# -- helpers -------------------------------------------------------------------------------


async def _all_offline(connection: aiosqlite.Connection) -> None:
    await connection.execute("UPDATE chargers SET online = 0 WHERE online = 1")


def _row_id(cursor: aiosqlite.Cursor) -> int:
    row_id = cursor.lastrowid
    if row_id is None:  # pragma: no cover - an INSERT always sets it
        raise StoreError("SQLite returned no row id")
    return row_id


def _charger_row(row: Any) -> ChargerRow:
    values = list(row)
    values[-1] = bool(values[-1])
    return ChargerRow(*values)


async def _scalar(connection: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> Any:
    # The first column of the first row, or None when there is no row.
    async with connection.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def _require_session(connection: aiosqlite.Connection, session_id: int) -> None:
    if await _scalar(connection, "SELECT 1 FROM sessions WHERE id = ?", [session_id]) is None:
        raise StoreError(f"no session {session_id}")


async def _session(connection: aiosqlite.Connection, session_id: int) -> SessionRow | None:
    rows = await _select_sessions(connection, "WHERE id = ?", [session_id])
    return rows[0] if rows else None


async def _select_sessions(
    connection: aiosqlite.Connection, clauses: str, params: Sequence[Any]
) -> list[SessionRow]:
    rows = list(
        await connection.execute_fetchall(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {clauses}", params
        )
    )
    if not rows:
        return []
    backend_ids: dict[int, dict[str, str]] = {row["id"]: {} for row in rows}
    links = await connection.execute_fetchall(
        "SELECT session_id, backend_id, backend_transaction_id FROM session_backends "
        f"WHERE session_id IN (SELECT id FROM sessions {clauses}) ORDER BY backend_id",
        params,
    )
    for session_id, backend_id, backend_transaction_id in links:
        backend_ids[session_id][backend_id] = backend_transaction_id
    return [SessionRow(*row, backend_transaction_ids=backend_ids[row["id"]]) for row in rows]


async def _samples(
    connection: aiosqlite.Connection, session_id: int, measurand: str | None = None
) -> list[MeterSample]:
    where, params = "WHERE session_id = ?", [session_id]
    if measurand is not None:
        where, params = f"{where} AND measurand = ?", [session_id, measurand]
    rows = await connection.execute_fetchall(
        f"SELECT {_SAMPLE_COLUMNS} FROM meter_samples {where} ORDER BY at, id", params
    )
    return [MeterSample(*row) for row in rows]
