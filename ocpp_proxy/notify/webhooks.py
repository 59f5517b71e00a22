"""Webhook delivery: events POSTed as signed JSON, at least once, durably queued in SQLite.

Each event of the :class:`~ocpp_proxy.event_bus.EventBus` that a webhook subscribes to is
written to its queue (``webhook_queue``, bounded by the webhook's ``max_queue``: the oldest
are dropped beyond it and counted). One task per webhook POSTs its queue in order; a
non-2xx answer, a timeout or a refused connection is retried after 1, 2, 4, ... s (at most
:data:`MAX_BACKOFF_S`), so a receiver that is down for hours, or a restart of the proxy,
loses nothing. The relay only hands events to the bus: none of this runs on its path.

Each POST carries (see DOCS.md, "Webhooks", for checking them):

* ``X-OCPP-Proxy-Timestamp``: Unix time (s) of the attempt;
* ``X-OCPP-Proxy-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the webhook's
  secret, of ``<timestamp>.<body>`` (:func:`signature`);
* ``X-OCPP-Proxy-Event`` and ``X-OCPP-Proxy-Event-Id`` (the body's ``event`` and ``id``; a
  retried event keeps its id, so a receiver can drop duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import aiohttp

from ocpp_proxy import __version__
from ocpp_proxy.clock import Clock, SystemClock, iso_utc
from ocpp_proxy.config import WebhookConfig
from ocpp_proxy.event_bus import WEBHOOK_TEST, Event, EventBus
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.relay.changes import ChangeFeed
from ocpp_proxy.store import StoreError
from ocpp_proxy.store.notify import DeliveryRow, WebhookRow, WebhookTables
from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OCPP-Proxy-Signature"
TIMESTAMP_HEADER = "X-OCPP-Proxy-Timestamp"
EVENT_HEADER = "X-OCPP-Proxy-Event"
EVENT_ID_HEADER = "X-OCPP-Proxy-Event-Id"

#: The first retry waits this long (s); each next one twice as long as the one before.
FIRST_BACKOFF_S = 1.0
#: The longest wait between two attempts (s).
MAX_BACKOFF_S = 3600.0
#: Events written to SQLite in one transaction at most.
_BATCH = 200


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body`` keyed with ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def backoff_s(attempts: int) -> float:
    """The wait (s) before the next attempt after ``attempts`` failed ones (>= 1)."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, attempts - 1))


def new_secret() -> str:
    """A random webhook secret (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def public(row: WebhookRow) -> dict[str, Any]:
    """A webhook as the API and the page show it: everything but the secret."""
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events),
        "source": row.source,
        "max_queue": row.max_queue,
        "timeout_s": row.timeout_s,
        "queued": row.queued,
        "delivered": row.delivered,
        "dropped": row.dropped,
        "last_attempt_at": iso_utc(row.last_attempt_at),
        "last_success_at": iso_utc(row.last_success_at),
        "last_error": row.last_error,
    }


class WebhookDispatcher:
    """Queues the bus's events for the webhooks that want them and delivers them.

    Args:
        tables: the store's webhook tables.
        bus: where events come from.
        session: the HTTP client session for the POSTs.
        clock: wall time and the waits between retries.
        metrics: ``ocpp_proxy_webhook_attempts_total{webhook,result}``,
            ``ocpp_proxy_webhook_dropped_total{webhook}``.
    """

    def __init__(
        self,
        tables: WebhookTables,
        bus: EventBus,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._tables = tables
        self._metrics = metrics or Metrics()
        self._bus = bus
        self._session = session
        self._clock: Clock = clock or SystemClock()
        self._hooks: dict[str, WebhookRow] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._events: asyncio.Queue[Event] | None = None
        self._consumer: asyncio.Task[None] | None = None
        #: Events that could not be queued because the store failed (logged each time).
        self.store_failures = 0
        #: Deliveries queued and attempts made since start; ``changes`` wakes on each.
        self.enqueued = 0
        self.attempts = 0
        self.changes = ChangeFeed()
        self._tasks = TaskSet("webhooks")  # owned here, awaited in close()

    async def start(self, configured: Sequence[WebhookConfig]) -> None:
        """Make the stored webhooks match the config's (API ones are kept), start delivering."""
        stored = {row.id: row for row in await self._tables.all()}
        for hook in configured:
            old = stored.get(hook.id)
            await self._tables.put(
                WebhookRow(
                    hook.id,
                    hook.url,
                    hook.events,
                    hook.secret,
                    "config",
                    hook.max_queue,
                    hook.timeout,
                    old.created_at if old else self._clock.time(),
                )
            )
        wanted = {hook.id for hook in configured}
        for row in stored.values():
            if row.source == "config" and row.id not in wanted:
                await self._tables.delete(row.id)
        for row in await self._tables.all():
            self._run(row)
        self._events = self._bus.subscribe()
        self._consumer = self._tasks.spawn(self._consume(self._events))

    async def close(self) -> None:
        """Stop taking events and delivering (what is queued stays for the next start)."""
        if self._events is not None:
            self._bus.unsubscribe(self._events)
        tasks = [t for t in (self._consumer, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        await self._tasks.close()

    # -- managing ------------------------------------------------------------------------

    async def webhooks(self) -> list[WebhookRow]:
        """Every webhook with its counters and queue depth."""
        return await self._tables.all()

    def get(self, webhook_id: str) -> WebhookRow | None:
        """The webhook ``webhook_id``, if there is one."""
        return self._hooks.get(webhook_id)

    async def add(self, row: WebhookRow) -> None:
        """Add (or replace) a webhook and start delivering to it."""
        await self._tables.put(row)
        self._stop(row.id)
        self._run(row)

    async def remove(self, webhook_id: str) -> bool:
        """Remove a webhook and drop its queue; whether there was one."""
        self._stop(webhook_id)
        return await self._tables.delete(webhook_id)

    async def test(self, webhook_id: str) -> Event:
        """Queue a ``webhook.test`` event for this webhook only."""
        hook = self._hooks[webhook_id]
        event = Event(WEBHOOK_TEST, None, {"webhook_id": webhook_id})
        await self._tables.enqueue(
            [(hook, event.id, event.name, _encode(event))], self._clock.time()
        )
        self.enqueued += 1
        self._wake[webhook_id].set()
        return event

    def _run(self, row: WebhookRow) -> None:
        self._hooks[row.id] = row
        self._wake[row.id] = asyncio.Event()
        self._workers[row.id] = self._tasks.spawn(self._deliver(row.id))

    def _stop(self, webhook_id: str) -> None:
        self._hooks.pop(webhook_id, None)
        self._wake.pop(webhook_id, None)
        task = self._workers.pop(webhook_id, None)
        if task is not None:
            task.cancel()

    # -- queueing ------------------------------------------------------------------------

    async def _consume(self, events: asyncio.Queue[Event]) -> None:
        while True:
            batch = [await events.get()]
            while len(batch) < _BATCH and not events.empty():
                batch.append(events.get_nowait())
            deliveries = [
                (hook, event.id, event.name, _encode(event))
                for event in batch
                for hook in self._hooks.values()
                if hook.wants(event.name)
            ]
            if not deliveries:
                continue
            try:
                dropped = await self._tables.enqueue(deliveries, self._clock.time())
            except StoreError as err:
                self.store_failures += len(batch)
                _LOGGER.error("%d events not queued for webhooks: %s", len(batch), err)
                continue
            self.enqueued += len(deliveries)
            self.changes.notify()
            for hook_id, count in dropped.items():
                self._metrics.inc("ocpp_proxy_webhook_dropped_total", count, webhook=hook_id)
                _LOGGER.warning(
                    "webhook %s: queue full, %d oldest deliveries dropped", hook_id, count
                )
            for hook_id in {hook.id for hook, *_ in deliveries}:
                if hook_id in self._wake:
                    self._wake[hook_id].set()

    # -- delivering ----------------------------------------------------------------------

    async def _deliver(self, webhook_id: str) -> None:
        wake = self._wake[webhook_id]
        while True:
            wake.clear()
            try:
                delivery = await self._tables.head(webhook_id)
            except StoreError as err:
                _LOGGER.error("webhook %s: cannot read its queue: %s", webhook_id, err)
                await self._clock.sleep(MAX_BACKOFF_S / 60)
                continue
            if delivery is None:
                await wake.wait()
                continue
            wait_s = delivery.next_attempt_at - self._clock.time()
            if wait_s > 0:
                await self._clock.sleep(wait_s)
                continue
            error = await self._post(self._hooks[webhook_id], delivery)
            result = "ok" if error is None else "failed"
            self._metrics.inc(
                "ocpp_proxy_webhook_attempts_total", webhook=webhook_id, result=result
            )
            now = self._clock.time()
            try:
                if error is None:
                    await self._tables.delivered(delivery, now)
                else:
                    retry_at = now + backoff_s(delivery.attempts + 1)
                    _LOGGER.info(
                        "webhook %s: %s not delivered (%s); next attempt at %s",
                        webhook_id,
                        delivery.event,
                        error,
                        iso_utc(retry_at),
                    )
                    await self._tables.failed(delivery, error, now, retry_at)
            except StoreError as err:
                _LOGGER.error("webhook %s: cannot record an attempt: %s", webhook_id, err)
                await self._clock.sleep(MAX_BACKOFF_S / 60)
            self.attempts += 1
            self.changes.notify()

    async def _post(self, hook: WebhookRow, delivery: DeliveryRow) -> str | None:
        """POST ``delivery``; None if the receiver accepted it (2xx), else why not."""
        body = delivery.body.encode()
        timestamp = str(int(self._clock.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"ocpp-proxy/{__version__}",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(hook.secret, timestamp, body),
            EVENT_HEADER: delivery.event,
            EVENT_ID_HEADER: delivery.event_id,
        }
        try:
            async with self._session.post(
                hook.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=hook.timeout_s),
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except TimeoutError:
            return f"no answer within {hook.timeout_s:g} s"
        except aiohttp.ClientError as err:
            return f"{type(err).__name__}: {err}"[:300]


def _encode(event: Event) -> str:
    return json.dumps(event.body(), separators=(",", ":"), sort_keys=True)
