"""The database schema: numbered forward migrations, the version in ``PRAGMA user_version``.

Each :class:`Migration` is an SQL script that takes the file from ``version - 1`` to
``version``; :func:`migrate` applies those above the file's version, each in its own
transaction that also sets ``user_version``, so a crash mid-way leaves the file at the last
version that completed. Migrations are never edited once released: a change is a new one.

Conventions: times are Unix seconds (UTC) stored as REAL (``datetime(at, 'unixepoch')``
shows them in the sqlite3 shell); energies are REAL Wh (``_wh``) or kWh (``_kwh``); booleans
INTEGER 0/1. Ids that callers hold on to (outbox rows, sessions, audit entries) are
``AUTOINCREMENT`` so that a deleted id is never handed out again.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass

import aiosqlite

from ocpp_proxy.store.errors import StoreError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One forward step of the schema: ``script`` takes the file to ``version``."""

    version: int
    description: str
    script: str


_V1_CORE = """
-- Charge points the proxy has seen, with what their last BootNotification said.
CREATE TABLE chargers (
    id          TEXT PRIMARY KEY NOT NULL,
    vendor      TEXT,
    model       TEXT,
    serial      TEXT,
    firmware    TEXT,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    online      INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1))
);

-- Charging sessions: one per transaction, open while stopped_at IS NULL.
CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id  TEXT NOT NULL,
    connector_id     INTEGER,
    evse_id          INTEGER,
    transaction_id   TEXT NOT NULL,
    owner            TEXT,
    id_tag           TEXT,
    started_at       REAL NOT NULL,
    stopped_at       REAL,
    meter_start_wh   REAL,
    meter_stop_wh    REAL,
    energy_kwh       REAL,
    stop_reason      TEXT,
    revenue          REAL,
    currency         TEXT
);
CREATE UNIQUE INDEX sessions_open
    ON sessions (charge_point_id, transaction_id) WHERE stopped_at IS NULL;
CREATE INDEX sessions_charge_point ON sessions (charge_point_id, started_at);
CREATE INDEX sessions_started ON sessions (started_at);

-- The transaction id each backend assigned to a session.
CREATE TABLE session_backends (
    session_id              INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    backend_id              TEXT NOT NULL,
    backend_transaction_id  TEXT NOT NULL,
    PRIMARY KEY (session_id, backend_id)
) WITHOUT ROWID;

-- Sampled values of a session (MeterValues, TransactionEvent).
CREATE TABLE meter_samples (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    at          REAL NOT NULL,
    measurand   TEXT NOT NULL,
    phase       TEXT,
    value       REAL NOT NULL,
    unit        TEXT,
    context     TEXT
);
CREATE INDEX meter_samples_session ON meter_samples (session_id, measurand, at);

-- OCPP 1.6: the transaction ids the proxy gave the charger ...
CREATE TABLE transaction_ids (
    charge_point_id  TEXT NOT NULL,
    transaction_id   INTEGER NOT NULL,
    allocated_at     REAL NOT NULL,
    PRIMARY KEY (charge_point_id, transaction_id)
) WITHOUT ROWID;

-- ... and, for each, the id every backend assigned in its StartTransaction.conf.
CREATE TABLE transaction_id_backends (
    charge_point_id         TEXT NOT NULL,
    transaction_id          INTEGER NOT NULL,
    backend_id              TEXT NOT NULL,
    backend_transaction_id  INTEGER NOT NULL,
    PRIMARY KEY (charge_point_id, transaction_id, backend_id),
    FOREIGN KEY (charge_point_id, transaction_id)
        REFERENCES transaction_ids (charge_point_id, transaction_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Per-charge-point counters (the next OCPP 1.6 transaction id).
CREATE TABLE counters (
    charge_point_id  TEXT NOT NULL,
    name             TEXT NOT NULL,
    next_value       INTEGER NOT NULL,
    PRIMARY KEY (charge_point_id, name)
) WITHOUT ROWID;

-- Charger CALLs a backend has not confirmed, delivered in id order.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id  TEXT NOT NULL,
    backend_id       TEXT NOT NULL,
    action           TEXT NOT NULL,
    frame            TEXT NOT NULL,
    transaction_id   INTEGER,
    created_at       REAL NOT NULL
);
CREATE INDEX outbox_queue ON outbox (charge_point_id, backend_id, id);
"""

_V2_LOGS = """
-- Decisions about backend commands, for the homeowner.
CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id  TEXT,
    at               REAL NOT NULL,
    actor            TEXT NOT NULL,
    action           TEXT NOT NULL,
    summary          TEXT NOT NULL,
    decision         TEXT NOT NULL,
    rule             TEXT,
    reason           TEXT,
    answer           TEXT
);
CREATE INDEX audit_log_charge_point ON audit_log (charge_point_id, id);

-- Every OCPP-J frame in and out, pruned by age and row count.
CREATE TABLE message_log (
    id               INTEGER PRIMARY KEY,
    charge_point_id  TEXT NOT NULL,
    at               REAL NOT NULL,
    peer             TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    message_type     INTEGER NOT NULL,
    action           TEXT,
    unique_id        TEXT NOT NULL,
    frame            TEXT NOT NULL,
    size             INTEGER NOT NULL
);
CREATE INDEX message_log_charge_point ON message_log (charge_point_id, id);
CREATE INDEX message_log_at ON message_log (at);
"""

_V3_SETTINGS = """
-- The homeowner's settings changed at run time (override, current limit), as JSON values.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
"""

_V5_CARDS = """
-- The homeowner's cards added through the REST API (those of home_cards live in the config).
-- Card ids are personal data: they stay in this file, logs show them masked.
CREATE TABLE home_cards (
    id_tag      TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    expires_at  REAL,
    created_at  REAL NOT NULL
);

-- Cards a backend accepted, and when it last did (offline_authorization: known_cards).
CREATE TABLE known_cards (
    id_tag       TEXT NOT NULL,
    backend_id   TEXT NOT NULL,
    accepted_at  REAL NOT NULL,
    PRIMARY KEY (id_tag, backend_id)
) WITHOUT ROWID;
"""

_V4_CHARGER_STATE = """
-- The charger's last BootNotification and StatusNotification per connector, as it sent them:
-- replayed to a backend that comes up late, also after a restart of the proxy.
CREATE TABLE charger_state (
    charge_point_id  TEXT NOT NULL,
    key              TEXT NOT NULL,
    frame            TEXT NOT NULL,
    at               REAL NOT NULL,
    PRIMARY KEY (charge_point_id, key)
);
"""

_V6_NOTIFY_ACCESS = """
-- Webhooks: from the config (source 'config', re-synced at start) or the REST API ('api').
CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY NOT NULL,
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,          -- JSON list of event names; [] = every event
    secret           TEXT NOT NULL,          -- the HMAC key (needed in clear to sign)
    source           TEXT NOT NULL CHECK (source IN ('config', 'api')),
    max_queue        INTEGER NOT NULL,
    timeout_s        REAL NOT NULL,
    created_at       REAL NOT NULL,
    delivered        INTEGER NOT NULL DEFAULT 0,
    dropped          INTEGER NOT NULL DEFAULT 0,  -- deliveries dropped: its queue was full
    last_attempt_at  REAL,
    last_success_at  REAL,
    last_error       TEXT
);

-- Deliveries not yet accepted (2xx) by their webhook, oldest first.
CREATE TABLE webhook_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event            TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       REAL NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT
);
CREATE INDEX webhook_queue_order ON webhook_queue (webhook_id, id);

-- REST API tokens created through the API: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    name          TEXT PRIMARY KEY NOT NULL,
    token_sha256  TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('read', 'control', 'admin')),
    created_at    REAL NOT NULL
);
"""

_V7_TRANSLATION_STATE = """
-- Per translated backend link (docs/translation.md), what a running transaction's translation
-- needs after a restart: the 2.x seqNo reached for a 1.6 charger's transaction, or the id a 1.6
-- backend assigned to a 2.x charging station's transaction. As JSON; removed when it ends.
CREATE TABLE translation_state (
    charge_point_id  TEXT NOT NULL,
    backend_id       TEXT NOT NULL,
    transaction_id   TEXT NOT NULL,
    state            TEXT NOT NULL,
    at               REAL NOT NULL,
    PRIMARY KEY (charge_point_id, backend_id, transaction_id)
);
"""

_V8_MESSAGE_LOG_BLOCKS = """
-- The message log in blocks: one row per charge point and written batch. body holds its frames,
-- oldest first, by column: the times (integer µs), peers, directions, message types, actions
-- ('' for none), unique ids, frame texts and sizes, each column's values joined by char(31) and
-- the eight columns by char(30) (ocpp_proxy.store.write_behind; a separator inside a value is
-- written as its JSON escape). A frame's id is the block's id plus its place in the block.
-- bytes counts the characters of frame text kept; first_at / last_at are the block's oldest and
-- newest times (Unix s). Each row of the old table becomes a block of one frame.
CREATE TABLE message_log_blocks (
    id               INTEGER PRIMARY KEY,
    charge_point_id  TEXT NOT NULL,
    first_at         REAL NOT NULL,
    last_at          REAL NOT NULL,
    frames           INTEGER NOT NULL CHECK (frames > 0),
    bytes            INTEGER NOT NULL,
    body             TEXT NOT NULL
);
INSERT INTO message_log_blocks (id, charge_point_id, first_at, last_at, frames, bytes, body)
    SELECT id, charge_point_id, at, at, 1, length(frame),
           CAST(round(at * 1000000) AS INTEGER) || char(30)
           || replace(replace(peer, char(30), '\\u001e'), char(31), '\\u001f') || char(30)
           || direction || char(30) || message_type || char(30)
           || replace(replace(coalesce(action, ''), char(30), '\\u001e'), char(31), '\\u001f')
           || char(30)
           || replace(replace(unique_id, char(30), '\\u001e'), char(31), '\\u001f') || char(30)
           || replace(replace(frame, char(30), '\\u001e'), char(31), '\\u001f') || char(30)
           || size
    FROM message_log ORDER BY id;
DROP TABLE message_log;
CREATE INDEX message_log_blocks_charge_point ON message_log_blocks (charge_point_id, id);
CREATE INDEX message_log_blocks_last_at ON message_log_blocks (last_at);
"""

#: Every migration, in ascending order.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "chargers, sessions, transaction ids, counters, outbox", _V1_CORE),
    Migration(2, "audit log and message log", _V2_LOGS),
    Migration(3, "homeowner settings", _V3_SETTINGS),
    Migration(4, "the charger's last boot and connector statuses", _V4_CHARGER_STATE),
    Migration(5, "home cards and cards backends accepted", _V5_CARDS),
    Migration(6, "webhooks, their delivery queue, API tokens", _V6_NOTIFY_ACCESS),
    Migration(7, "the running transactions of translated backend links", _V7_TRANSLATION_STATE),
    Migration(8, "the message log in blocks of frames", _V8_MESSAGE_LOG_BLOCKS),
)

#: The schema version this code writes and understands (the last migration's).
SCHEMA_VERSION: int = MIGRATIONS[-1].version


def split_statements(script: str) -> list[str]:
    """Split an SQL script into its statements.

    Args:
        script: SQL text; semicolons inside strings, comments and trigger bodies are kept.

    Returns:
        The statements, each with its closing semicolon (added to a last statement that
        lacks one), in order; empty ones left out.

    Raises:
        ValueError: the script ends inside a string, comment or trigger body.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_sql(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_sql(pending.removesuffix(";")):
        raise ValueError(f"unfinished SQL statement: {pending.strip()[:80]!r}")
    return statements


def _has_sql(text: str) -> bool:
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return bool(code.strip(" \t\r\n;"))


async def schema_version(db: aiosqlite.Connection) -> int:
    """Return the schema version of the open database file (``PRAGMA user_version``).

    Raises:
        sqlite3.Error: the file cannot be read (e.g. it is not a database).
    """
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def migrate(db: aiosqlite.Connection, *, target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Apply every migration above the file's version, up to ``target``.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction, which re-reads the
    version first (another process may have migrated meanwhile) and sets ``user_version``
    last. The connection must have no transaction open.

    Args:
        db: an open connection (any isolation level; this issues BEGIN/COMMIT itself).
        target: the version to reach (tests build old files with a lower one).

    Returns:
        ``(version found, version now)``.

    Raises:
        StoreError: the file's version is newer than :data:`SCHEMA_VERSION`, or a migration
            failed (it was rolled back; the file stays at the previous version).
        ValueError: ``target`` is not a known version.
        sqlite3.Error: the file cannot be read at all (e.g. it is not a database).
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise ValueError(f"target must be 0..{SCHEMA_VERSION}, got {target}")
    found = await schema_version(db)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"database schema version {found} is newer than this ocpp-proxy supports "
            f"({SCHEMA_VERSION}); upgrade ocpp-proxy or use another data dir"
        )
    version = found
    for migration in MIGRATIONS:
        if migration.version <= version or migration.version > target:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            version = await schema_version(db)
            if migration.version > version:
                for statement in split_statements(migration.script):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {migration.version:d}")
                version = migration.version
            await db.execute("COMMIT")
        except BaseException as err:
            await _rollback(db)
            if isinstance(err, sqlite3.Error):
                raise StoreError(
                    f"schema migration {migration.version} ({migration.description}) failed: {err}"
                ) from err
            raise
        _LOGGER.info("database schema at version %d: %s", version, migration.description)
    return found, version


async def _rollback(db: aiosqlite.Connection) -> None:
    # Fails when no transaction is open (BEGIN itself failed): nothing to undo then.
    with contextlib.suppress(sqlite3.Error):
        await db.execute("ROLLBACK")
