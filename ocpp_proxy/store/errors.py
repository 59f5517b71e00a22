"""The one error the store raises for anything that goes wrong with the database."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be opened, migrated, read or written, or the store is closed.

    The message names what was being done and SQLite's reason; the original
    :class:`sqlite3.Error` (if any) is the ``__cause__``.
    """
