"""The one SQLite connection of the store, and transactions on it that cannot be torn.

aiosqlite runs every statement on one worker thread, in the order they were issued. A
transaction made of several awaited statements would mix with another coroutine's statements
issued in between, so every access here holds :attr:`Database.lock`. A write runs in a task of
its own that the caller awaits through :func:`asyncio.shield`: a caller that is cancelled
mid-way (its charger hung up, the proxy is stopping) leaves the transaction to commit or roll
back whole, never half-open on the shared connection.

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL``. A committed transaction survives
a crash of the process (even SIGKILL), since it is in the WAL file the OS holds; a power loss
or OS crash may lose the last transactions committed before it (never corrupting the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiosqlite

from ocpp_proxy.store import schema
from ocpp_proxy.store.errors import StoreError

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

#: What runs inside a transaction: gets the connection, returns the caller's result.
Work = Callable[[aiosqlite.Connection], Awaitable[_T]]

#: The permissions of the database file and its -wal/-shm companions (owner read/write).
FILE_MODE = 0o600

#: How long a statement waits for another process's lock (e.g. a sqlite3 shell) (s).
BUSY_TIMEOUT_S = 5.0


class _Write:
    """A write waiting for its group's transaction."""

    __slots__ = ("done", "what", "work")

    def __init__(self, what: str, work: Work[object], done: asyncio.Future[object]) -> None:
        self.what = what
        self.work = work
        self.done = done


class Database:
    """An open database file: one aiosqlite connection, its lock, and its transactions.

    Make one with :meth:`open`; end it with :meth:`close`.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection: aiosqlite.Connection | None = connection
        self.path = path
        self.lock = asyncio.Lock()
        self._writes: set[asyncio.Task[object]] = set()
        self._queued: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Database:
        """Open (creating if need be) and migrate the database file at ``path``.

        A file this creates gets mode 0o600 before SQLite writes to it, and so do its -wal
        and -shm files (SQLite creates those with the main file's mode; they are set again
        here in case the umask or an earlier run differed).

        Args:
            path: the database file; its directory must exist.

        Returns:
            The open database, at :data:`schema.SCHEMA_VERSION`.

        Raises:
            StoreError: the file cannot be created or opened, is not an SQLite database, has
                a newer schema than this code, or a migration failed.
        """
        path = Path(path)
        created = _create_private(path)
        try:
            connection = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {path}: {err}") from err
        connection.row_factory = sqlite3.Row
        try:
            mode = await _pragma(connection, "journal_mode = WAL")
            if str(mode).lower() != "wal":
                _LOGGER.warning("%s: WAL journal not available (%s); writes are slower", path, mode)
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await schema.migrate(connection)
        except sqlite3.Error as err:
            await connection.close()
            raise StoreError(f"cannot use database {path}: {err}") from err
        except BaseException:
            await connection.close()
            raise
        if created:
            restrict_permissions(path)
        return cls(connection, path)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has closed the connection."""
        return self._connection is None

    def connection(self) -> aiosqlite.Connection:
        """Return the open connection.

        Raises:
            StoreError: the database is closed.
        """
        if self._connection is None:
            raise StoreError("the store is closed")
        return self._connection

    async def write(self, what: str, work: Work[_T]) -> _T:
        """Run ``work`` in a ``BEGIN IMMEDIATE`` transaction; return its result once committed.

        Writes that arrive while another is under way are committed together in the next
        transaction (group commit): one BEGIN and one COMMIT for all of them, which is what
        keeps many chargers' MeterValues cheap. If any of a group fails, the group is rolled
        back and each write is run again alone, so one bad write never takes another with it.
        The group runs in a task of its own, under :attr:`lock`: a caller that is cancelled
        leaves its write to commit (or roll back) whole.

        Args:
            what: what is being done, for the error message.
            work: issues the statements; must not begin or end a transaction itself.

        Raises:
            StoreError: the store is closed, or SQLite failed (the write was rolled back).
        """
        connection = self.connection()
        loop = asyncio.get_running_loop()
        queued = _Write(what, work, loop.create_future())
        self._queued.append(queued)
        if self._writer is None:
            self._writer = loop.create_task(self._write_groups(connection))
            self._writes.add(self._writer)
            self._writer.add_done_callback(self._write_done)
        return await asyncio.shield(queued.done)

    async def _write_groups(self, connection: aiosqlite.Connection) -> None:
        try:
            while self._queued:
                group, self._queued = self._queued, []
                async with self.lock:
                    try:
                        results = await self._group(connection, group)
                    except Exception:
                        results = None
                if results is None:
                    for write in group:  # one by one: each gets its own outcome
                        await self._settle(
                            write, self._transaction(connection, write.what, write.work)
                        )
                else:
                    for write, result in zip(group, results, strict=True):
                        if not write.done.done():
                            write.done.set_result(result)
        finally:
            self._writer = None

    async def _group(self, connection: aiosqlite.Connection, group: list[_Write]) -> list[object]:
        await connection.execute("BEGIN IMMEDIATE")
        try:
            results = [await write.work(connection) for write in group]
            await connection.execute("COMMIT")
        except BaseException:
            await _rollback(connection)
            raise
        return results

    @staticmethod
    async def _settle(write: _Write, transaction: Awaitable[object]) -> None:
        try:
            result = await transaction
        except Exception as err:
            if not write.done.done():
                write.done.set_exception(err)
        else:
            if not write.done.done():
                write.done.set_result(result)

    async def read(self, what: str, work: Work[_T]) -> _T:
        """Run ``work`` (reads, or one self-contained statement) under :attr:`lock`.

        Args:
            what: what is being done, for the error message.
            work: issues the statements.

        Raises:
            StoreError: the store is closed, or SQLite failed.
        """
        connection = self.connection()
        async with self.lock:
            try:
                return await work(connection)
            except sqlite3.Error as err:
                raise StoreError(f"{what} failed: {err}") from err

    async def close(self) -> None:
        """Wait for writes under way, then close the connection (idempotent).

        Raises:
            StoreError: SQLite failed to close the file.
        """
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.close()
        except sqlite3.Error as err:
            raise StoreError(f"closing database {self.path} failed: {err}") from err

    async def _transaction(self, connection: aiosqlite.Connection, what: str, work: Work[_T]) -> _T:
        async with self.lock:
            try:
                await connection.execute("BEGIN IMMEDIATE")
                try:
                    result = await work(connection)
                    await connection.execute("COMMIT")
                except BaseException:
                    await _rollback(connection)
                    raise
            except sqlite3.Error as err:
                raise StoreError(f"{what} failed: {err}") from err
            return result

    def _write_done(self, task: asyncio.Task[object]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller got it, or was cancelled and cannot


def restrict_permissions(path: Path) -> None:
    """Set :data:`FILE_MODE` on the database file and on its -wal and -shm files if present.

    Raises:
        StoreError: a file exists but its mode cannot be changed.
    """
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            os.chmod(name, FILE_MODE)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise StoreError(f"cannot restrict permissions of {name}: {err}") from err


def _create_private(path: Path) -> bool:
    # Creates an empty (valid, empty SQLite) file readable by its owner only, so that no
    # other user can open it between its creation and a chmod. False: it existed already.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as err:
        raise StoreError(f"cannot create database {path}: {err}") from err
    os.close(descriptor)
    return True


async def _pragma(connection: aiosqlite.Connection, pragma: str) -> object:
    rows = list(await connection.execute_fetchall(f"PRAGMA {pragma}"))
    return rows[0][0] if rows else None


async def _rollback(connection: aiosqlite.Connection) -> None:
    # Fails when SQLite already rolled back (or BEGIN itself failed): nothing to undo then.
    with contextlib.suppress(sqlite3.Error):
        await connection.execute("ROLLBACK")
