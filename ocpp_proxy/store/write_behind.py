"""Writes that callers must never wait for: the OCPP message log and chargers' last_seen.

Every frame in and out is logged, so :meth:`WriteBehind.log_frame` only appends to a buffer;
a background task writes the buffer in batches, one transaction per batch of at most
:data:`BATCH_ROWS` rows, at most :data:`FLUSH_INTERVAL_S` after the first buffered row (at
once when a batch is full). Rows still buffered when the process dies are lost: this is a
diagnostic log, not the record of transactions (the outbox and sessions are written through).

Nothing a peer sends can fill the disk through it: a frame over :data:`MAX_LOGGED_FRAME_CHARS`
is logged cut (its ``size`` stays the whole frame's), and the frames kept are bounded in
bytes (``message_log_max_bytes``, checked after every batch) as well as in rows and days.
Charger configuration secrets are masked before a frame is buffered
(:func:`ocpp_proxy.security.redaction.mask_config_secrets`). The audit log is pruned by age
(``audit_log_days``) and to :data:`AUDIT_MAX_ROWS` with the message log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

import aiosqlite

from ocpp_proxy.security.redaction import mask_config_secrets
from ocpp_proxy.store.database import Database
from ocpp_proxy.store.errors import StoreError
from ocpp_proxy.store.rows import FrameDirection, MessageRow

_LOGGER = logging.getLogger(__name__)

#: Longest a logged frame waits in memory before it is written (s).
FLUSH_INTERVAL_S = 0.5

#: Most rows written in one transaction; a full batch is written at once.
BATCH_ROWS = 1000

#: How often the message log is pruned (s).
PRUNE_INTERVAL_S = 3600.0

#: Most frames kept in memory when the database cannot keep up; the oldest go first.
MAX_BUFFERED_FRAMES = 100_000

#: Longest frame text kept whole in the message log (characters); longer ones are cut.
MAX_LOGGED_FRAME_CHARS = 4096

#: Most audit log rows kept (a backend flooding commands gets each one audited).
AUDIT_MAX_ROWS = 200_000

_SECONDS_PER_DAY = 86_400.0

_FrameRecord = tuple[str, float, str, str, int, str | None, str, str, int | None]

_MESSAGE_COLUMNS = (
    "id, charge_point_id, at, peer, direction, message_type, action, unique_id, frame, size"
)


class WriteBehind:
    """The message log buffer and its background writer, and buffered charger last_seen.

    Args:
        db: the open database.
        message_log_days: how long logged frames are kept (days, > 0).
        message_log_max_rows: most logged frames kept (>= 0); the oldest go first.
        message_log_max_bytes: most bytes of frame text kept; the oldest go first.
        audit_log_days: how long audit entries are kept (days, > 0).
    """

    def __init__(
        self,
        db: Database,
        *,
        message_log_days: float,
        message_log_max_rows: int,
        message_log_max_bytes: int = 200 * 2**20,
        audit_log_days: float = 90.0,
    ) -> None:
        self._db = db
        self.message_log_days = message_log_days
        self.message_log_max_rows = message_log_max_rows
        self.message_log_max_bytes = message_log_max_bytes
        self.audit_log_days = audit_log_days
        self._log_bytes: int | None = None  # frame bytes in the table; read at the first batch
        self.frames_dropped = 0  # frames lost to a full buffer or a failed write
        self._frames: deque[_FrameRecord] = deque()
        self._frames_logged = 0  # frames ever appended to the buffer
        self._frames_taken = 0  # frames taken out of it (written, being written, or dropped)
        self._seen: dict[str, float] = {}
        self._pending = asyncio.Event()  # something is buffered
        self._batch_full = asyncio.Event()  # a whole batch is buffered
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background writer (and the hourly pruning)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="ocpp-proxy store writer"
            )

    async def close(self) -> None:
        """Stop the background writer and write everything buffered.

        Raises:
            StoreError: the last write failed (those rows are lost).
        """
        self._closing = True
        self._pending.set()
        self._batch_full.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    # -- buffering ---------------------------------------------------------------------

    def log_frame(
        self,
        charge_point_id: str,
        *,
        peer: str,
        direction: FrameDirection,
        message_type: int,
        action: str | None,
        unique_id: str,
        frame: str,
        at: float,
    ) -> None:
        """Buffer one frame for the message log; never blocks (see the module docstring).

        After :meth:`close` the frame is dropped (and counted in ``frames_dropped``).

        Raises:
            ValueError: ``direction`` is not ``"in"`` or ``"out"``.
        """
        if direction not in ("in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
        if self._db.closed:
            self.frames_dropped += 1
            return
        if not frame.isascii():
            try:
                frame.encode()
            except UnicodeEncodeError:  # lone surrogates: SQLite could not store the text either
                frame = frame.encode("utf-8", "backslashreplace").decode()
        size: int | None = None  # None: left to SQLite, which knows it without a copy
        if len(frame) > MAX_LOGGED_FRAME_CHARS:
            size = len(frame.encode("utf-8", "surrogatepass"))
            frame = f"{frame[:MAX_LOGGED_FRAME_CHARS]}… [cut: {size} bytes]"
        frame = mask_config_secrets(frame)
        record = (
            charge_point_id,
            at,
            peer,
            direction,
            message_type,
            action,
            unique_id,
            frame,
            size,
        )
        self._frames.append(record)
        self._frames_logged += 1
        if len(self._frames) > MAX_BUFFERED_FRAMES:
            self._frames.popleft()
            self._frames_taken += 1
            self.frames_dropped += 1
            if self.frames_dropped % 10_000 == 1:
                _LOGGER.warning("message log buffer full; %d frames dropped", self.frames_dropped)
        if not self._pending.is_set():
            self._pending.set()
        if len(self._frames) >= BATCH_ROWS:
            self._batch_full.set()

    def seen_pending(self, charge_point_id: str) -> bool:
        """Whether a sighting of ``charge_point_id`` waits in the buffer."""
        return charge_point_id in self._seen

    def charger_seen(self, charge_point_id: str, at: float) -> None:
        """Buffer a charge point's last_seen time (Unix s), written with the next batch."""
        if at > self._seen.get(charge_point_id, float("-inf")):
            self._seen[charge_point_id] = at
        self._pending.set()

    # -- writing -----------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every frame and last_seen buffered before this call.

        Returns once they are committed. The rows of a batch that fails are dropped (counted
        in ``frames_dropped``) and the failure raised.

        Raises:
            StoreError: a batch could not be written, or the store is closed.
        """
        target = self._frames_logged
        while True:
            await self._write_batch()
            # Rows are only taken inside the database lock: once a write of ours has held
            # it, every row taken before was committed (or failed) too.
            if self._frames_taken >= target:
                return

    async def _write_batch(self) -> None:
        taken = 0

        async def write(connection: aiosqlite.Connection) -> None:
            nonlocal taken
            taken = min(len(self._frames), BATCH_ROWS)
            frames = [self._frames.popleft() for _ in range(taken)]
            self._frames_taken += taken
            seen, self._seen = self._seen, {}
            if not self._frames and not self._seen:
                self._pending.clear()
            if len(self._frames) < BATCH_ROWS:
                self._batch_full.clear()
            if frames:
                await connection.executemany(
                    "INSERT INTO message_log (charge_point_id, at, peer, direction, "
                    "message_type, action, unique_id, frame, size) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                    "coalesce(?9, length(CAST(?8 AS BLOB))))",
                    frames,
                )
                await self._bound_bytes(connection, frames)
            if seen:
                await connection.executemany(
                    "INSERT INTO chargers (id, first_seen, last_seen, online) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
                    [(cp_id, at, at) for cp_id, at in seen.items()],
                )

        try:
            await self._db.write("writing the message log", write)
        except StoreError:
            self.frames_dropped += taken
            raise

    async def _bound_bytes(
        self, connection: aiosqlite.Connection, frames: list[_FrameRecord]
    ) -> None:
        """Delete the oldest frames while the kept frame text is over its byte bound.

        Runs inside the batch's transaction. The tally counts characters of the kept text (the
        UTF-8 bytes of ASCII text; a close estimate otherwise) and is read from the table once.
        """
        if self._log_bytes is None:
            rows = await connection.execute_fetchall(
                "SELECT coalesce(sum(length(frame)), 0) FROM message_log"
            )
            self._log_bytes = int(rows[0][0])  # includes the batch just inserted
        else:
            self._log_bytes += sum(len(record[7]) for record in frames)
        excess = self._log_bytes - self.message_log_max_bytes
        if excess <= 0:
            return
        # A tenth of the bound more than needed, so that this does not run at every batch.
        target = excess + self.message_log_max_bytes // 10
        deleted = 0
        while deleted < target:
            rows = await connection.execute_fetchall(
                "SELECT id, length(frame) FROM message_log ORDER BY id LIMIT 1000"
            )
            if not rows:
                break
            last = rows[-1][0]
            for row_id, length in rows:
                deleted += length
                if deleted >= target:
                    last = row_id
                    break
            await connection.execute("DELETE FROM message_log WHERE id <= ?", [last])
        self._log_bytes -= deleted
        _LOGGER.info("message log over its size bound: %d bytes of old frames deleted", deleted)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + PRUNE_INTERVAL_S
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pending.wait(), max(0.0, next_prune - loop.time()))
            if self._pending.is_set() and not self._closing:
                # Let a batch fill for a while: fewer, larger transactions.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_full.wait(), FLUSH_INTERVAL_S)
            try:
                if self._pending.is_set():
                    await self.flush()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_INTERVAL_S
                    await self.prune(time.time())
            except Exception:
                _LOGGER.exception("writing the message log failed")

    # -- reading and retention ---------------------------------------------------------

    async def messages(
        self, charge_point_id: str | None = None, limit: int = 100
    ) -> list[MessageRow]:
        """Return logged frames, newest first (buffered ones included: this flushes first).

        Args:
            charge_point_id: only this charge point's frames; None: all.
            limit: most rows returned (>= 0).

        Raises:
            StoreError: the database failed, or the store is closed.
            ValueError: ``limit`` is negative.
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        await self.flush()
        where, params = (
            ("WHERE charge_point_id = ?", [charge_point_id]) if charge_point_id else ("", [])
        )

        async def read(connection: aiosqlite.Connection) -> list[MessageRow]:
            rows = await connection.execute_fetchall(
                f"SELECT {_MESSAGE_COLUMNS} FROM message_log {where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
            return [MessageRow(*row) for row in rows]

        return await self._db.read("reading the message log", read)

    async def prune(self, now: float) -> int:
        """Delete old logged frames and audit entries.

        Logged frames older than ``message_log_days`` and beyond ``message_log_max_rows`` go,
        audit entries older than ``audit_log_days`` and beyond :data:`AUDIT_MAX_ROWS`. Flushes
        first. The newest ``message_log_max_rows`` rows (by insertion) are kept.

        Args:
            now: the current Unix time (s).

        Returns:
            How many message log rows were deleted.

        Raises:
            StoreError: the database failed, or the store is closed.
        """
        await self.flush()
        cutoff = now - self.message_log_days * _SECONDS_PER_DAY
        keep = self.message_log_max_rows
        audit_cutoff = now - self.audit_log_days * _SECONDS_PER_DAY

        async def prune(connection: aiosqlite.Connection) -> tuple[int, int]:
            by_age = await connection.execute("DELETE FROM message_log WHERE at < ?", [cutoff])
            by_count = await connection.execute(
                "DELETE FROM message_log WHERE id <= "
                "(SELECT id FROM message_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [keep],
            )
            audit_by_age = await connection.execute(
                "DELETE FROM audit_log WHERE at < ?", [audit_cutoff]
            )
            audit_by_count = await connection.execute(
                "DELETE FROM audit_log WHERE id <= "
                "(SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [AUDIT_MAX_ROWS],
            )
            return (
                max(by_age.rowcount, 0) + max(by_count.rowcount, 0),
                max(audit_by_age.rowcount, 0) + max(audit_by_count.rowcount, 0),
            )

        deleted, audit_deleted = await self._db.write("pruning the message log", prune)
        if deleted:
            self._log_bytes = None  # counted afresh at the next batch
            _LOGGER.info("message log: %d old frames deleted", deleted)
        if audit_deleted:
            _LOGGER.info("audit log: %d old entries deleted", audit_deleted)
        return deleted
