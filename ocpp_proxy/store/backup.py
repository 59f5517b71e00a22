"""A consistent copy of the database for Home Assistant backups, and its restore.

The Supervisor backs an app up by copying ``/data`` file by file while the app runs. A live
SQLite database in WAL mode copied that way can be inconsistent: the main file and its ``-wal``
file are read at different moments. So the app's ``backup_pre`` runs ``ocpp-proxy backup
snapshot``, which writes :data:`SNAPSHOT_FILE` with SQLite's online backup API (one read
transaction: every committed transaction, so every finished session, and nothing half-written),
``backup_exclude`` leaves the live files out, and ``backup_post`` (``ocpp-proxy backup done``)
removes the snapshot. A proxy that starts on a data folder with a snapshot and no database (a
restored backup) moves the snapshot into place first (:func:`restore_snapshot`).

Sessions and the outbox are written through (committed before the proxy goes on), so a separate
process sees them; the message log's last half second may still be in the proxy's memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Final

from ocpp_proxy.store.errors import StoreError

_LOGGER = logging.getLogger(__name__)

#: The database's file name inside the data dir (as ``ocpp_proxy.store.DATABASE_FILE``).
DATABASE_FILE: Final = "ocpp-proxy.sqlite3"

#: The snapshot's file name inside the data dir. Not matched by the app's ``backup_exclude``
#: pattern for the live database (``ocpp-proxy.sqlite3*``).
SNAPSHOT_FILE: Final = "ocpp-proxy-backup.sqlite3"

#: How long the snapshot waits for the proxy's write lock, in s.
_BUSY_TIMEOUT_S: Final = 30.0


def snapshot(data_dir: Path) -> Path | None:
    """Write a consistent copy of the data dir's database to :data:`SNAPSHOT_FILE`.

    Safe while the proxy runs (another process: SQLite's locks keep the copy consistent).
    Returns the snapshot's path, or None when there is no database yet. Raises
    :class:`StoreError` when the database cannot be read or the copy cannot be written.
    """
    source = data_dir / DATABASE_FILE
    if not source.exists():
        return None
    target = data_dir / SNAPSHOT_FILE
    partial = data_dir / (SNAPSHOT_FILE + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=_BUSY_TIMEOUT_S)) as live,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            live.backup(copy)  # all pages in one step: one read transaction
            # One self-contained file (the copy inherits WAL mode from the page it copied).
            copy.execute("PRAGMA journal_mode = DELETE")
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"snapshot of {source} failed its check: {check}")
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as err:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot snapshot {source}: {err}") from err
    return target


def discard_snapshot(data_dir: Path) -> bool:
    """Remove the snapshot once the backup has copied it; whether there was one."""
    path = data_dir / SNAPSHOT_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def restore_snapshot(data_dir: Path) -> bool:
    """Put a restored backup's snapshot in place of the database; whether it did.

    With no database beside it, the snapshot becomes the database (stale ``-wal``/``-shm``
    files are removed first: they belong to no database now). With a database beside it, the
    snapshot is a leftover of a backup whose ``backup_post`` did not run: the database is
    newer, and the snapshot is removed.
    """
    snapshot_path = data_dir / SNAPSHOT_FILE
    if not snapshot_path.exists():
        return False
    database = data_dir / DATABASE_FILE
    if database.exists():
        _LOGGER.info("removing %s, left over from an earlier backup", snapshot_path)
        snapshot_path.unlink()
        return False
    for suffix in ("-wal", "-shm", "-journal"):
        (data_dir / (DATABASE_FILE + suffix)).unlink(missing_ok=True)
    os.replace(snapshot_path, database)
    _LOGGER.warning("database restored from the backup's snapshot %s", snapshot_path)
    return True
