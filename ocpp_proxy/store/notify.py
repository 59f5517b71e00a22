"""Webhooks, their durable delivery queue, and API tokens (tables of schema migration 6).

:class:`WebhookTables` and :class:`TokenTable` work on the store's :class:`Database`; get them
as ``store.webhooks`` and ``store.tokens``. Every method raises :class:`StoreError` when SQLite
fails or the store is closed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from ocpp_proxy.store.database import Database


@dataclass(frozen=True, slots=True)
class WebhookRow:
    """A webhook: where events go, which, and how its deliveries fared.

    ``url`` gets the ``events`` (empty: all), signed with the HMAC ``secret``; ``source``
    is ``config`` or ``api``; then its queue bound, HTTP timeout (s), and
    its delivery counters (Unix s times).
    """

    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    source: str
    max_queue: int
    timeout_s: float
    created_at: float
    delivered: int = 0
    dropped: int = 0
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    queued: int = 0

    def wants(self, event: str) -> bool:
        """Whether this webhook subscribes to ``event``."""
        return not self.events or event in self.events


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One queued delivery.

    The event's id and name, its JSON body, attempts made so far and when the next may be
    made (Unix s).
    """

    id: int
    webhook_id: str
    event_id: str
    event: str
    body: str
    attempts: int
    next_attempt_at: float


_WEBHOOK_COLUMNS = (
    "id, url, events, secret, source, max_queue, timeout_s, created_at, delivered, dropped, "
    "last_attempt_at, last_success_at, last_error, "
    "(SELECT COUNT(*) FROM webhook_queue q WHERE q.webhook_id = webhooks.id)"
)


def _webhook(row: Sequence[object]) -> WebhookRow:
    values = list(row)
    values[2] = tuple(json.loads(str(values[2])))
    return WebhookRow(*values)  # type: ignore[arg-type]


class WebhookTables:
    """The ``webhooks`` and ``webhook_queue`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[WebhookRow]:
        """Every webhook, by id, with its queue depth."""

        async def read(connection: aiosqlite.Connection) -> list[WebhookRow]:
            rows = await connection.execute_fetchall(
                f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"
            )
            return [_webhook(row) for row in rows]

        return await self._db.read("reading webhooks", read)

    async def put(self, hook: WebhookRow) -> None:
        """Add ``hook`` or replace the one with its id (keeping its queue and counters)."""

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO webhooks (id, url, events, secret, source, max_queue, timeout_s, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "url = excluded.url, events = excluded.events, secret = excluded.secret, "
                "source = excluded.source, max_queue = excluded.max_queue, "
                "timeout_s = excluded.timeout_s",
                [
                    hook.id,
                    hook.url,
                    json.dumps(list(hook.events)),
                    hook.secret,
                    hook.source,
                    hook.max_queue,
                    hook.timeout_s,
                    hook.created_at,
                ],
            )

        await self._db.write("saving a webhook", write)

    async def delete(self, webhook_id: str) -> bool:
        """Remove a webhook and its queue; whether there was one."""

        async def write(connection: aiosqlite.Connection) -> bool:
            await connection.execute("DELETE FROM webhook_queue WHERE webhook_id = ?", [webhook_id])
            cursor = await connection.execute("DELETE FROM webhooks WHERE id = ?", [webhook_id])
            return cursor.rowcount > 0

        return await self._db.write("deleting a webhook", write)

    async def enqueue(
        self, deliveries: Sequence[tuple[WebhookRow, str, str, str]], now: float
    ) -> dict[str, int]:
        """Queue ``(webhook, event id, event name, body)`` deliveries in one transaction.

        A webhook's queue keeps at most its ``max_queue`` deliveries: the oldest beyond that
        are dropped and counted in its ``dropped``.

        Returns:
            Deliveries dropped now, by webhook id.
        """

        async def write(connection: aiosqlite.Connection) -> dict[str, int]:
            dropped: dict[str, int] = {}
            for hook, event_id, event, body in deliveries:
                # A webhook removed meanwhile gets nothing (rather than failing the batch).
                await connection.execute(
                    "INSERT INTO webhook_queue (webhook_id, event_id, event, body, created_at, "
                    "next_attempt_at) SELECT ?, ?, ?, ?, ?, ? "
                    "WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)",
                    [hook.id, event_id, event, body, now, now, hook.id],
                )
            for hook_id, bound in {h.id: h.max_queue for h, *_ in deliveries}.items():
                cursor = await connection.execute(
                    "DELETE FROM webhook_queue WHERE webhook_id = ? AND id NOT IN (SELECT id "
                    "FROM webhook_queue WHERE webhook_id = ? ORDER BY id DESC LIMIT ?)",
                    [hook_id, hook_id, bound],
                )
                if cursor.rowcount > 0:
                    dropped[hook_id] = cursor.rowcount
                    await connection.execute(
                        "UPDATE webhooks SET dropped = dropped + ? WHERE id = ?",
                        [cursor.rowcount, hook_id],
                    )
            return dropped

        return await self._db.write("queueing webhook deliveries", write)

    async def head(self, webhook_id: str) -> DeliveryRow | None:
        """The oldest queued delivery of a webhook, or None."""

        async def read(connection: aiosqlite.Connection) -> DeliveryRow | None:
            rows = list(
                await connection.execute_fetchall(
                    "SELECT id, webhook_id, event_id, event, body, attempts, next_attempt_at "
                    "FROM webhook_queue WHERE webhook_id = ? ORDER BY id LIMIT 1",
                    [webhook_id],
                )
            )
            return DeliveryRow(*rows[0]) if rows else None

        return await self._db.read("reading the webhook queue", read)

    async def delivered(self, delivery: DeliveryRow, now: float) -> None:
        """The receiver accepted ``delivery``: remove it, count it."""

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute("DELETE FROM webhook_queue WHERE id = ?", [delivery.id])
            await connection.execute(
                "UPDATE webhooks SET delivered = delivered + 1, last_attempt_at = ?, "
                "last_success_at = ?, last_error = NULL WHERE id = ?",
                [now, now, delivery.webhook_id],
            )

        await self._db.write("recording a webhook delivery", write)

    async def failed(self, delivery: DeliveryRow, error: str, now: float, retry_at: float) -> None:
        """An attempt failed with ``error``: count it, and retry no sooner than ``retry_at``."""

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "UPDATE webhook_queue SET attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ? WHERE id = ?",
                [retry_at, error, delivery.id],
            )
            await connection.execute(
                "UPDATE webhooks SET last_attempt_at = ?, last_error = ? WHERE id = ?",
                [now, error, delivery.webhook_id],
            )

        await self._db.write("recording a failed webhook delivery", write)


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An API token made through the API: its name, role, SHA-256 (hex) and creation time."""

    name: str
    token_sha256: str
    role: str
    created_at: float


class TokenTable:
    """The ``api_tokens`` table (hashed secrets only)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[TokenRow]:
        """Every token, by name."""

        async def read(connection: aiosqlite.Connection) -> list[TokenRow]:
            rows = await connection.execute_fetchall(
                "SELECT name, token_sha256, role, created_at FROM api_tokens ORDER BY name"
            )
            return [TokenRow(*row) for row in rows]

        return await self._db.read("reading API tokens", read)

    async def add(self, row: TokenRow) -> None:
        """Keep a new token (its name must be free)."""

        async def write(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO api_tokens (name, token_sha256, role, created_at) VALUES (?, ?, ?, ?)",
                [row.name, row.token_sha256, row.role, row.created_at],
            )

        await self._db.write("saving an API token", write)

    async def delete(self, name: str) -> bool:
        """Revoke token ``name``; whether there was one."""

        async def write(connection: aiosqlite.Connection) -> bool:
            cursor = await connection.execute("DELETE FROM api_tokens WHERE name = ?", [name])
            return cursor.rowcount > 0

        return await self._db.write("revoking an API token", write)
