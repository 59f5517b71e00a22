"""Writes that callers must never wait for: the OCPP message log and chargers' last_seen.

Every frame in and out is logged, so :meth:`WriteBehind.log_frame` only appends a tuple to a
buffer: everything else (masking, cutting, sizing, encoding) happens in the background writer.
It writes the buffer in batches, one transaction per batch of at most :data:`BATCH_ROWS`
frames, at most :data:`FLUSH_INTERVAL_S` after the first buffered frame (at once when a batch
is full). Frames still buffered when the process dies are lost: this is a diagnostic log, not
the record of transactions (the outbox and sessions are written through).

A batch is stored as one row per charge point (a *block*, table ``message_log_blocks``) whose
``body`` holds its frames by column, oldest first (:data:`RECORD_SEPARATOR`): a row per frame
cost SQLite about 10 µs of CPU each (two index inserts), four frames per relayed call, more than
the relay's own work (docs/benchmarks.md). A frame's id is its block's id plus its place in the
block, so ids grow with time per charge point. Retention cuts a block where the bound falls.

Nothing a peer sends can fill the disk through it: a frame over :data:`MAX_LOGGED_FRAME_CHARS`
is logged cut (its ``size`` stays the whole frame's), and the frames kept are bounded in
bytes (``message_log_max_bytes``, checked after every batch) as well as in rows and days.
Charger configuration secrets are masked before a frame is written
(:func:`ocpp_proxy.security.redaction.mask_config_secrets`). The audit log is pruned by age
(``audit_log_days``) and to :data:`AUDIT_MAX_ROWS` with the message log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from array import array
from collections import deque
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter

import aiosqlite

from ocpp_proxy.security.redaction import mask_config_secrets
from ocpp_proxy.store.database import Database
from ocpp_proxy.store.errors import StoreError
from ocpp_proxy.store.rows import FrameDirection, MessageRow

_LOGGER = logging.getLogger(__name__)

#: Longest a logged frame waits in memory before it is written (s).
FLUSH_INTERVAL_S = 0.5

#: Most frames written in one transaction; a full batch is written at once. With 100 chargers a
#: batch of 1,000 frames made blocks of about ten frames, whose fixed cost doubled the log's
#: (8.3 against 4.7 µs of CPU per relayed call, measured alone); the writer holds the database
#: for a few ms per batch of this size.
BATCH_ROWS = 4000

#: How often the message log is pruned (s).
PRUNE_INTERVAL_S = 3600.0

#: Most frames kept in memory when the database cannot keep up; the oldest go first (counted in
#: ``frames_dropped``, shown in ``/status`` and the metrics). At the relay's own top rate on the
#: project's VM (about 20,000 frames/s) this is five seconds of a stalled disk.
MAX_BUFFERED_FRAMES = 100_000

#: Longest frame text kept whole in the message log (characters); longer ones are cut.
MAX_LOGGED_FRAME_CHARS = 4096

#: Most audit log rows kept (a backend flooding commands gets each one audited).
AUDIT_MAX_ROWS = 200_000

_SECONDS_PER_DAY = 86_400.0

#: A buffered frame: charge point, at, peer, direction, message type, action, unique id, text.
_Buffered = tuple[str, float, str, str, int, str | None, str, str]

#: A frame in a block: at (Unix s), peer, direction, message type, action, unique id, text kept,
#: size (bytes).
_Record = tuple[float, str, str, int, str | None, str, str, int]

_TEXT = 6  # where a record holds the frame's text
_CHARGE_POINT = itemgetter(0)  # a buffered frame's charge point
_UNBOUNDED = 2**62  # no bound (SQLite integers are 64-bit)

#: A block's body, by column: the frames' times, peers, directions, message types, actions
#: (empty for none), unique ids, texts and sizes, each column's values joined by US and the
#: eight columns by RS (ASCII 31 and 30, which a JSON text holds only in a malformed frame;
#: there they are written as their JSON escapes). Columns, so that building a block is a few
#: joins in C, not Python work per frame. The times are :data:`PACKED_TIMES` and the hex of
#: the times as little-endian IEEE 754 doubles (Unix s): formatting each as a decimal cost
#: more than the rest of the block. Blocks written before (and by migration 8) hold them as
#: decimal integer µs joined by US; both are read.
RECORD_SEPARATOR = "\x1e"
FIELD_SEPARATOR = "\x1f"
PACKED_TIMES = "x"
_BIG_ENDIAN = sys.byteorder == "big"


def _packed_times(ats: Sequence[float]) -> str:
    """The times column of a body: :data:`PACKED_TIMES`, then the doubles' hex (see above)."""
    doubles = array("d", ats)
    if _BIG_ENDIAN:
        doubles.byteswap()
    return PACKED_TIMES + doubles.tobytes().hex()


def _times_of(column: str) -> list[float]:
    """The times (Unix s) a body's times column holds, packed or decimal µs."""
    if not column.startswith(PACKED_TIMES):
        return [int(at) / 1e6 for at in column.split(FIELD_SEPARATOR)]
    doubles = array("d", bytes.fromhex(column[len(PACKED_TIMES) :]))
    if _BIG_ENDIAN:
        doubles.byteswap()
    return doubles.tolist()


def _loggable(text: str) -> tuple[str, int]:
    """The text kept of a frame (cut, masked, valid UTF-8) and the frame's size in bytes."""
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode())
        except UnicodeEncodeError:  # lone surrogates: SQLite could not store the text either
            text = text.encode("utf-8", "backslashreplace").decode()
            size = len(text)
    if len(text) > MAX_LOGGED_FRAME_CHARS:
        text = f"{text[:MAX_LOGGED_FRAME_CHARS]}… [cut: {size} bytes]"
    return mask_config_secrets(text), size


def _escaped(text: str) -> str:
    """``text`` with the body's separators written as JSON escapes (a malformed frame's)."""
    return text.replace(RECORD_SEPARATOR, "\\u001e").replace(FIELD_SEPARATOR, "\\u001f")


def _column(values: Sequence[str]) -> str:
    """One column of a body: ``values`` joined, a separator inside one escaped."""
    joined = FIELD_SEPARATOR.join(values)
    if joined.count(FIELD_SEPARATOR) == len(values) - 1 and RECORD_SEPARATOR not in joined:
        return joined
    return FIELD_SEPARATOR.join([_escaped(value) for value in values])


def _columns(
    ats: Sequence[float],
    peers: Sequence[str],
    directions: Sequence[str],
    kinds: Sequence[int],
    actions: Sequence[str | None],
    unique_ids: Sequence[str],
    texts: Sequence[str],
    sizes: Sequence[int],
) -> str:
    """The body of a block whose frames have these fields, oldest first."""
    return RECORD_SEPARATOR.join(
        (
            _packed_times(ats),
            _column(peers),
            FIELD_SEPARATOR.join(directions),
            FIELD_SEPARATOR.join(map(str, kinds)),
            _column([action or "" for action in actions]),
            _column(unique_ids),
            _column(texts),
            FIELD_SEPARATOR.join(map(str, sizes)),
        )
    )


def _body(records: list[_Record]) -> str:
    """The body of a block holding ``records`` (oldest first)."""
    return _columns(*zip(*records, strict=True))  # type: ignore[arg-type]


def _records(body: str) -> list[_Record]:
    """The records of a block's body, oldest first."""
    times, *columns = body.split(RECORD_SEPARATOR)
    peers, directions, kinds, actions, unique_ids, texts, sizes = (
        column.split(FIELD_SEPARATOR) for column in columns
    )
    ats = _times_of(times)
    return [
        (at, peer, direction, int(kind), action or None, unique_id, text, int(size))
        for at, peer, direction, kind, action, unique_id, text, size in zip(
            ats, peers, directions, kinds, actions, unique_ids, texts, sizes, strict=True
        )
    ]


def _times(records: list[_Record]) -> tuple[float, float]:
    ats = [record[0] for record in records]
    return min(ats), max(ats)


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
        self._frames: deque[_Buffered] = deque()
        self._next_id: int | None = None  # the next frame's id; read at the first batch
        self._frames_taken = 0  # frames taken out of it (written, being written, or dropped)
        # The buffer length at which append() must do more than append: wake the writer (1),
        # tell it a batch is full (BATCH_ROWS), shed the oldest (past MAX_BUFFERED_FRAMES), or
        # drop (0, closed). One comparison per frame instead of three checks.
        self._wake_at = 1
        self._seen: dict[str, float] = {}
        self._pending = asyncio.Event()  # something is buffered
        self._batch_full = asyncio.Event()  # a whole batch is buffered
        self._closing = False
        self._closed = False  # closed: frames are dropped (and counted)
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
        try:
            await self.flush()
        finally:
            self._closed = True
            self._wake_at = 0

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
        if direction != "in" and direction != "out":
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
        self.append((charge_point_id, at, peer, direction, message_type, action, unique_id, frame))

    def append(self, record: tuple[str, float, str, str, int, str | None, str, str]) -> None:
        """Buffer one frame: :meth:`log_frame`'s arguments in order, ``direction`` unchecked."""
        frames = self._frames
        frames.append(record)
        if len(frames) >= self._wake_at:
            self._crossed()

    def _crossed(self) -> None:
        """The buffer reached :attr:`_wake_at`: wake the writer, or shed, or drop if closed."""
        frames = self._frames
        if self._closed:
            frames.pop()
            self.frames_dropped += 1
            return
        self._pending.set()
        if len(frames) > MAX_BUFFERED_FRAMES:
            frames.popleft()
            self._frames_taken += 1
            self.frames_dropped += 1
            if self.frames_dropped % 10_000 == 1:
                _LOGGER.warning("message log buffer full; %d frames dropped", self.frames_dropped)
        if len(frames) >= BATCH_ROWS:
            self._batch_full.set()
            self._wake_at = MAX_BUFFERED_FRAMES + 1
        else:
            self._wake_at = min(BATCH_ROWS, MAX_BUFFERED_FRAMES + 1)

    @property
    def frames_buffered(self) -> int:
        """Frames waiting in memory to be written."""
        return len(self._frames)

    @property
    def frames_logged(self) -> int:
        """Frames handed to the message log since the start (written, waiting or dropped)."""
        return self._frames_taken + len(self._frames)

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
        target = self.frames_logged
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
            buffer = self._frames
            if len(buffer) <= BATCH_ROWS:  # the usual case: all of it, copied in C
                frames = list(buffer)
                buffer.clear()
            else:
                frames = [buffer.popleft() for _ in range(BATCH_ROWS)]
            taken = len(frames)
            self._frames_taken += taken
            seen, self._seen = self._seen, {}
            if not self._frames and not self._seen:
                self._pending.clear()
            if len(self._frames) < BATCH_ROWS:
                self._batch_full.clear()
            if not self._closed:
                left = len(self._frames)
                self._wake_at = min(left + 1, BATCH_ROWS, MAX_BUFFERED_FRAMES + 1) if left else 1
            if frames:
                blocks = await self._blocks(connection, frames)
                await connection.executemany(
                    "INSERT INTO message_log_blocks "
                    "(id, charge_point_id, first_at, last_at, frames, bytes, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    blocks,
                )
                await self._bound_bytes(connection, sum(block[5] for block in blocks))
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

    async def _blocks(
        self, connection: aiosqlite.Connection, frames: list[_Buffered]
    ) -> list[tuple[int, str, float, float, int, int, str]]:
        """The rows of ``frames``: one block per charge point, its frames in order."""
        if self._next_id is None:
            rows = await connection.execute_fetchall(
                "SELECT coalesce(max(id + frames), 1) FROM message_log_blocks"
            )
            self._next_id = int(rows[0][0])
        # Per charge point, by column: joins and maps in C, no Python work per frame unless a
        # frame must be cut, masked or repaired (non-ASCII text is checked for UTF-8).
        blocks = []
        # A stable sort keeps each charge point's frames in order; sorting and grouping run in C.
        for charge_point_id, grouped in groupby(sorted(frames, key=_CHARGE_POINT), _CHARGE_POINT):
            group = list(grouped)
            _, ats, peers, directions, kinds, actions, unique_ids, texts = zip(*group, strict=True)
            every = "".join(texts)
            if (
                every.isascii()
                and '"key"' not in every
                and '"variable"' not in every
                and max(map(len, texts)) <= MAX_LOGGED_FRAME_CHARS
            ):
                sizes: Sequence[int] = list(map(len, texts))
            else:
                texts, sizes = zip(*map(_loggable, texts), strict=True)
                every = "".join(texts)
            block_id = self._next_id
            self._next_id += len(group)
            body = _columns(ats, peers, directions, kinds, actions, unique_ids, texts, sizes)
            blocks.append(
                (block_id, charge_point_id, min(ats), max(ats), len(group), len(every), body)
            )
        return blocks

    async def _bound_bytes(self, connection: aiosqlite.Connection, added: int) -> None:
        """Delete the oldest frames while the kept frame text is over its byte bound.

        Runs inside the batch's transaction. The tally counts characters of the kept text (the
        UTF-8 bytes of ASCII text; a close estimate otherwise) and is read from the table once.
        """
        if self._log_bytes is None:
            rows = await connection.execute_fetchall(
                "SELECT coalesce(sum(bytes), 0) FROM message_log_blocks"
            )
            self._log_bytes = int(rows[0][0])  # includes the batch just inserted
        else:
            self._log_bytes += added
        if self._log_bytes <= self.message_log_max_bytes:
            return
        # A tenth of the bound below it, so that this does not run at every batch.
        _, deleted = await _keep_newest(
            connection, chars=self.message_log_max_bytes - self.message_log_max_bytes // 10
        )
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
            charge_point_id: only this charge point's frames; None: all (the frames of one
                batch are then ordered by charge point).
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
            found: list[MessageRow] = []
            if limit == 0:
                return found
            cursor = await connection.execute(
                f"SELECT id, charge_point_id, body FROM message_log_blocks {where} "
                "ORDER BY id DESC",
                params,
            )
            try:
                while len(found) < limit:
                    blocks = await cursor.fetchmany(64)
                    if not blocks:
                        break
                    for block_id, block_charge_point, body in blocks:
                        records = _records(body)
                        for index in range(len(records) - 1, -1, -1):
                            found.append(
                                MessageRow(block_id + index, block_charge_point, *records[index])
                            )
                            if len(found) == limit:
                                return found
            finally:
                await cursor.close()
            return found

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
            by_age = await _drop_older(connection, cutoff)
            by_count, _ = await _keep_newest(connection, frames=keep)
            audit_by_age = await connection.execute(
                "DELETE FROM audit_log WHERE at < ?", [audit_cutoff]
            )
            audit_by_count = await connection.execute(
                "DELETE FROM audit_log WHERE id <= "
                "(SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [AUDIT_MAX_ROWS],
            )
            return (
                by_age + by_count,
                max(audit_by_age.rowcount, 0) + max(audit_by_count.rowcount, 0),
            )

        deleted, audit_deleted = await self._db.write("pruning the message log", prune)
        if deleted:
            self._log_bytes = None  # counted afresh at the next batch
            _LOGGER.info("message log: %d old frames deleted", deleted)
        if audit_deleted:
            _LOGGER.info("audit log: %d old entries deleted", audit_deleted)
        return deleted


# -- retention over blocks ---------------------------------------------------------------------


async def _drop_older(connection: aiosqlite.Connection, cutoff: float) -> int:
    """Delete the frames logged before ``cutoff`` (Unix s), oldest first; return how many.

    Whole blocks go when their newest frame is older; a block that straddles the cutoff loses
    its frames from the start up to the first one that is not older.
    """
    rows = await connection.execute_fetchall(
        "SELECT coalesce(sum(frames), 0) FROM message_log_blocks WHERE last_at < ?", [cutoff]
    )
    deleted = int(rows[0][0])
    await connection.execute("DELETE FROM message_log_blocks WHERE last_at < ?", [cutoff])
    straddling = await connection.execute_fetchall(
        "SELECT id, body FROM message_log_blocks WHERE first_at < ?", [cutoff]
    )
    for block_id, body in straddling:
        records = _records(body)
        old = 0
        while old < len(records) and records[old][0] < cutoff:
            old += 1
        if old:
            await _cut(connection, block_id, records, old)
            deleted += old
    return deleted


async def _keep_newest(
    connection: aiosqlite.Connection, *, frames: int | None = None, chars: int | None = None
) -> tuple[int, int]:
    """Delete the oldest frames beyond the newest ``frames`` / ``chars`` characters of text.

    Returns (frames deleted, characters of text deleted).
    """
    # The newest block that does not fit whole, found in SQLite in one pass (running sums
    # from the newest down): a walk block by block in Python would hop threads per row.
    rows = await connection.execute_fetchall(
        "SELECT id, kept_frames - frames, kept_bytes - bytes FROM ("
        " SELECT id, frames, bytes,"
        " sum(frames) OVER (ORDER BY id DESC) AS kept_frames,"
        " sum(bytes) OVER (ORDER BY id DESC) AS kept_bytes"
        " FROM message_log_blocks)"
        " WHERE kept_frames > ? OR kept_bytes > ? ORDER BY id DESC LIMIT 1",
        [_UNBOUNDED if frames is None else frames, _UNBOUNDED if chars is None else chars],
    )
    if not rows:
        return 0, 0
    block_id, kept_frames, kept_chars = rows[0][0], int(rows[0][1]), int(rows[0][2])
    rows = await connection.execute_fetchall(
        "SELECT coalesce(sum(frames), 0), coalesce(sum(bytes), 0) "
        "FROM message_log_blocks WHERE id < ?",
        [block_id],
    )
    deleted_frames, deleted_chars = int(rows[0][0]), int(rows[0][1])
    await connection.execute("DELETE FROM message_log_blocks WHERE id < ?", [block_id])
    [[body]] = await connection.execute_fetchall(
        "SELECT body FROM message_log_blocks WHERE id = ?", [block_id]
    )
    records = _records(body)
    keep = 0  # how many of the block's newest frames stay
    for record in reversed(records):
        length = len(record[_TEXT])
        if (frames is not None and kept_frames + 1 > frames) or (
            chars is not None and kept_chars + length > chars
        ):
            break
        keep += 1
        kept_frames += 1
        kept_chars += length
    old = len(records) - keep
    cut_chars = sum(len(record[_TEXT]) for record in records[:old])
    await _cut(connection, block_id, records, old)
    return deleted_frames + old, deleted_chars + cut_chars


async def _cut(
    connection: aiosqlite.Connection, block_id: int, records: list[_Record], old: int
) -> None:
    """Delete the ``old`` oldest frames of a block (the whole block if none is left)."""
    rest = records[old:]
    if not rest:
        await connection.execute("DELETE FROM message_log_blocks WHERE id = ?", [block_id])
        return
    first_at, last_at = _times(rest)
    await connection.execute(
        "UPDATE message_log_blocks SET id = ?, first_at = ?, last_at = ?, frames = ?, "
        "bytes = ?, body = ? WHERE id = ?",
        [
            block_id + old,  # its first frame's id, as before
            first_at,
            last_at,
            len(rest),
            sum(len(record[_TEXT]) for record in rest),
            _body(rest),
            block_id,
        ],
    )
