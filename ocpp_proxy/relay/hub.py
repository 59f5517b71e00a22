"""The hub of one charge point: where its frames are routed.

A frame travels one way: charger connection -> hub -> backend links, and back. The hub owns
the routing state of one charge point: the charger's connection, the backend links, the
charger CALLs waiting for an answer, the queue of commands to the charger and the OCPP 1.6
transaction id map. Policy (the arbiter) is consulted, not woven in; sockets stay at the edges.
Commands on their way to the charger are the other half of the hub, in
:mod:`ocpp_proxy.relay.charger_commands`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.config import ProxyConfig, ServiceConfig
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.policy.authorization import ACCEPTED, HOME, card_of, mask_card, status_of
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.protocol.frames import (
    CALL,
    CALLRESULT,
    CALLRESULTERROR,
    SEND,
    UNANSWERED_TYPES,
    Frame,
    FrameError,
    build_call,
    build_call_error,
    build_call_result,
    parse_frame,
    with_unique_id,
)
from ocpp_proxy.protocol.local_csms import local_answer
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.arbiter import (
    AllowAll,
    Arbiter,
)
from ocpp_proxy.relay.authorizer import CARD_ANSWERED, Authorizer, CardCheck
from ocpp_proxy.relay.backend_link import BackendLink, Delivery, Direction, LinkState, Peer
from ocpp_proxy.relay.cards import CardBook
from ocpp_proxy.relay.charger_commands import ChargerCommands
from ocpp_proxy.relay.command_queue import CommandQueue
from ocpp_proxy.relay.journal import CHARGER, Journal
from ocpp_proxy.relay.limit_keeper import LimitKeeper
from ocpp_proxy.relay.sessions import LOCAL, SessionRecorder, session_key, transaction_key
from ocpp_proxy.relay.start_contest import StartContest
from ocpp_proxy.relay.transaction_ids import TransactionIds, rewrite_transaction_id
from ocpp_proxy.security.schema import check_request
from ocpp_proxy.store import Store
from ocpp_proxy.tasks import spawn

_LOGGER = logging.getLogger(__name__)


class Upstream(Protocol):
    """The outbound WebSocket client of one service (see ``ocpp_proxy.transport.upstream``)."""

    def start(self) -> None:
        """Start dialling the service, and keep the link up until stopped."""
        ...

    async def stop(self) -> None:
        """Close the link and stop dialling."""
        ...


UpstreamFactory = Callable[[BackendLink, ServiceConfig, str], Upstream]


@dataclass(slots=True, eq=False)
class ChargerConnection:
    """The charger's open WebSocket and what was negotiated on it."""

    peer: Peer
    version: OcppVersion
    remote: str
    connected_since: float = field(default_factory=time.time)
    # Actions whose schema violations were logged on this connection (logged once each).
    schema_warned: set[str] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class PendingCall:
    """A charger CALL that waits for its one answer (from the primary, or from the proxy).

    ``transaction_id`` is the charger-side 1.6 transaction id it refers to or assigns;
    ``targets`` are the backends it was sent to; ``answers`` holds the answers of those that
    are not the primary, in case the primary goes away; ``deliveries`` are a transaction
    message's deliveries by backend id, which must be kept for those that have not confirmed
    it by the time the charger gets its answer.
    """

    frame: Frame
    transaction_id: int | None
    primary: BackendLink | None = None
    targets: tuple[BackendLink, ...] = ()
    answers: dict[str, Frame] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    deadline: float = 0.0  # loop time by which the primary must have answered (s)
    received_at: float = field(default_factory=time.monotonic)
    done: bool = False
    #: For a CALL that presents a card: the backends' answers, from which one is chosen.
    card: CardCheck | None = None


class ChargerHub(ChargerCommands):
    """Routes the frames of one charge point between its charger and its backends.

    Args:
        charge_point_id: the charge point's id (the last part of its URL).
        config: the proxy's configuration.
        store: where transaction messages, sessions and the message log are kept.
        home: the homeowner's inputs (current limit); shared by every charger of the house.
        arbiter: decides which backend commands reach the charger.
        upstream_factory: makes the outbound client of a service (None: no outbound links).
        on_change: called when something ``/status`` shows has changed.
    """

    def __init__(
        self,
        charge_point_id: str,
        config: ProxyConfig,
        store: Store,
        *,
        home: HomeState | None = None,
        cards: CardBook | None = None,
        metrics: Metrics | None = None,
        arbiter: Arbiter | None = None,
        upstream_factory: UpstreamFactory | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.id = charge_point_id
        self.config = config
        self.arbiter: Arbiter = arbiter or AllowAll()
        self.version: OcppVersion = config.ocpp_version
        self.charger: ChargerConnection | None = None
        self.last_message_at: float | None = None
        self.last_boot: Frame | None = None
        self.connectors: dict[str, dict[str, Any]] = {}
        self.transaction_ids = TransactionIds()
        self.store = store
        self.metrics = metrics or Metrics()
        self._answer_counters = {
            by: (
                self.metrics.counter("ocpp_proxy_charger_answers_total", by=by),
                self.metrics.counter("ocpp_proxy_charger_answer_seconds_total", by=by),
            )
            for by in ("backend", "local")
        }
        self.journal = Journal(
            store,
            charge_point_id,
            durable_outbox=config.durable_outbox,
            message_log=config.message_log,
            metrics=self.metrics,
        )
        self.sessions = SessionRecorder(
            store,
            charge_point_id,
            tariffs={
                backend.id: (backend.rate_per_kwh, backend.currency)
                for backend in (*config.ocpp_services, *config.inbound_backends)
                if backend.rate_per_kwh > 0
            },
            claim_window_s=config.remote_start_window,
            on_meter=self._changed,  # live readings, for displays such as Home Assistant
        )
        self.home = home or HomeState()
        self.cards = cards or CardBook(config, store)
        self.authorizer = Authorizer(config, self.cards)
        #: The last card presented at the charger, masked (for displays; personal data).
        self.last_card = ""
        self.limits = LimitKeeper(
            charge_point_id,
            config,
            self.home,
            self.homeowner_command,
            lambda: self.version,
            on_change=self._changed,
        )
        self._limit_task: asyncio.Task[None] | None = None
        self.alerts: deque[dict[str, Any]] = deque(maxlen=20)
        self._on_change = on_change
        self._upstream_factory = upstream_factory
        self._services = {s.id: s for s in config.ocpp_services if s.enabled}
        self._statuses: dict[str, Frame] = {}
        self._pending: dict[str, PendingCall] = {}
        # Calls waiting for the primary, in arrival order: with one timeout for all, their
        # deadlines are in order too, so one timer for the oldest serves them all.
        self._deadlines: deque[PendingCall] = deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._upstreams: dict[str, Upstream] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self.commands = CommandQueue(
            self._send_to_charger,
            timeout=config.response_timeout,
            generic_error=self.version.facts.generic_error,
            on_full=lambda: self.limit_hit("command_queue"),
        )
        self.links: dict[str, BackendLink] = {}
        for service in self._services.values():
            self._add_link(service.id, Direction.OUTBOUND, service.version)
        for backend in config.inbound_backends:
            if backend.enabled:
                self._add_link(backend.id, Direction.INBOUND, self.version)
        preferred = self.links.get(config.preferred_provider)
        others = [link for link in self.links.values() if link is not preferred]
        self._preference: list[BackendLink] = ([preferred] if preferred else []) + others
        ranks = {link.id: rank for rank, link in enumerate(self._preference)}
        self._starts = StartContest(
            config.start_race_window, lambda backend_id: ranks.get(backend_id, len(ranks))
        )

    def _add_link(self, backend_id: str, direction: Direction, version: OcppVersion) -> None:
        self.links[backend_id] = BackendLink(
            backend_id,
            direction,
            self,
            response_timeout=self.config.response_timeout,
            version=version,
            max_frame_bytes=self.config.max_frame_bytes,
            max_queue=self.config.outbox_max_messages,
            on_change=lambda _link: self._changed(),
        )

    async def restore(self) -> None:
        """Take up where the proxy stopped: unconfirmed messages, transaction ids, sessions."""
        self.transaction_ids.load(await self.store.transaction_id_map(self.id))
        await self.sessions.restore()
        for backend_id, rows in (await self.journal.outbox()).items():
            link = self.links.get(backend_id)
            if link is None:
                _LOGGER.warning(
                    "%s: %d queued messages for %s, which is no longer configured; kept",
                    self.id,
                    len(rows),
                    backend_id,
                )
                continue
            for row in rows:
                frame = parse_frame(row.frame)
                link.restore(Delivery(frame, True, None, row.transaction_id, outbox_id=row.id))
            _LOGGER.info("%s: %d queued messages for %s", self.id, len(rows), backend_id)

    # -- the charger's connection --------------------------------------------------------

    async def attach_charger(
        self, peer: Peer, version: OcppVersion, remote: str
    ) -> ChargerConnection:
        """The charger connected; replace an older connection of the same charge point.

        Starts (or keeps) an outbound link to every enabled service of the charger's version;
        a service of another version is marked refused with the reason.
        """
        old = self.charger
        connection = ChargerConnection(peer, version, remote)
        self.charger = connection
        if old is not None:
            _LOGGER.info("%s reconnected from %s; closing its old connection", self.id, remote)
            await self._drop_charger_state("the charge point reconnected")
            await old.peer.close()
        self.version = version
        for link in self.links.values():
            if link.direction is Direction.INBOUND and not link.connected:
                link.version = version
        for service_id, service in self._services.items():
            self._start_upstream(self.links[service_id], service, version)
        await self.journal.connected()
        self.limits.connected()
        self._limit_task = spawn(self.limits.after_connect())
        self._changed()
        return connection

    async def detach_charger(self, connection: ChargerConnection) -> None:
        """The charger's connection closed: drain the upstream links, then close them."""
        if self.charger is not connection:
            return  # an old connection that was replaced
        self.charger = None
        if self._limit_task is not None:
            self._limit_task.cancel()
        await self.journal.disconnected()
        await self._drop_charger_state("the charge point disconnected")
        for service_id in list(self._upstreams):
            self._draining[service_id] = spawn(self._drain_and_close(service_id))
        self._changed()

    def _start_upstream(
        self, link: BackendLink, service: ServiceConfig, version: OcppVersion
    ) -> None:
        draining = self._draining.pop(service.id, None)
        if draining is not None:
            draining.cancel()
        if service.version is not version:
            self._stop_upstream_soon(service.id)
            link.set_state(
                LinkState.REFUSED,
                f"the service speaks OCPP {service.version}, the charge point {version}",
            )
            return
        if service.id in self._upstreams or self._upstream_factory is None:
            return
        link.set_state(LinkState.CONNECTING, opening=True)
        upstream = self._upstream_factory(link, service, self.id)
        self._upstreams[service.id] = upstream
        upstream.start()

    def _stop_upstream_soon(self, service_id: str) -> None:
        upstream = self._upstreams.pop(service_id, None)
        if upstream is not None:
            spawn(upstream.stop())

    async def _drain_and_close(self, service_id: str) -> None:
        # A slower backend must not lose the charger's last StopTransaction because the
        # charger hung up first: let it answer what it was sent, for a bounded time.
        link = self.links[service_id]
        await link.drained(self.config.drain_timeout)
        upstream = self._upstreams.pop(service_id, None)
        self._draining.pop(service_id, None)
        if upstream is not None:
            await upstream.stop()
        link.set_state(LinkState.IDLE)

    async def close(self) -> None:
        """Stop every outbound link at once (proxy shutdown)."""
        for task in self._draining.values():
            task.cancel()
        self._draining.clear()
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        await asyncio.gather(*(u.stop() for u in upstreams), return_exceptions=True)

    async def _drop_charger_state(self, reason: str) -> None:
        for pending in self._pending.values():
            pending.done = True
        self._pending.clear()
        self._deadlines.clear()
        await self.commands.fail_all(reason)

    async def _send_to_charger(self, text: str) -> bool:
        connection = self.charger
        if connection is None:
            return False
        self.journal.frame(CHARGER, "out", text)
        try:
            await connection.peer.send_str(text)
        except (ConnectionError, RuntimeError) as err:
            _LOGGER.info("%s: send to the charge point failed: %s", self.id, err)
            return False
        return True

    # -- charger -> backends -------------------------------------------------------------

    async def on_charger_text(self, connection: ChargerConnection, raw: str) -> None:
        """Handle one text frame from the charger (OCPP-J 1.6 §4)."""
        if connection is not self.charger:
            return
        self.last_message_at = time.time()
        self.journal.seen()
        try:
            frame = parse_frame(raw, self.config.max_frame_bytes, self.version.facts.message_types)
        except FrameError as err:
            self.journal.frame(CHARGER, "in", raw)
            await self._charger_frame_error(err, raw)
            return
        kind = frame.message_type
        self.journal.frame(CHARGER, "in", raw, (kind, frame.unique_id, frame.action))
        if kind == CALL:
            if self.config.strict_charger_validation:
                if not await self._charger_call_conforms(connection, frame):
                    return
                await self._on_charger_call(frame)
            else:
                await self._on_charger_call(frame)
                # After the frame went on its way: the check (~0.12 ms for a 1.6 MeterValues,
                # ~0.17 ms for a 2.x TransactionEvent) then costs CPU but not latency.
                await self._charger_call_conforms(connection, frame)
        elif kind == SEND:
            # OCPP 2.1 SEND: never answered, so it needs no queue; every connected backend.
            for link in self._preference:
                if link.connected:
                    await link.send(frame.raw)
        elif kind == CALLRESULTERROR:
            _LOGGER.warning("%s reports a bad CALLRESULT: %s", self.id, frame.error)
        elif not await self.commands.on_answer(frame):
            _LOGGER.info("%s answered unknown unique id %s; dropped", self.id, frame.unique_id)

    async def _charger_call_conforms(self, connection: ChargerConnection, frame: Frame) -> bool:
        """Check a charger CALL against its schema (OCPP-J 1.6 §4.2.3); count a violation.

        Real chargers have quirks, so a violation is only counted and logged (once per action
        and connection), unless ``strict_charger_validation`` is on: then the charger gets a
        CALLERROR naming the violation and False is returned (the CALL goes nowhere).
        """
        action = frame.action or ""
        violation = check_request(self.version, action, frame.payload or {})
        if violation is None:
            return True
        self.metrics.inc("ocpp_proxy_schema_violations_total", peer="charger", action=action)
        strict = self.config.strict_charger_validation
        if action not in connection.schema_warned:
            connection.schema_warned.add(action)
            _LOGGER.warning(
                "%s sent a %s that breaks the schema (%s; %s): %s",
                self.id,
                action,
                violation.code,
                "refused" if strict else "forwarded anyway",
                violation.description,
            )
        if not strict:
            return True
        await self._send_to_charger(
            build_call_error(frame.unique_id, violation.code, violation.description)
        )
        return False

    async def _charger_frame_error(self, err: FrameError, raw: str) -> None:
        _LOGGER.warning("%s sent a malformed frame (%s): %.200s", self.id, err.reason, raw)
        if err.too_large:
            self.limit_hit("max_frame_bytes")
        if err.unique_id is None:
            return
        facts = self.version.facts
        if err.message_type in UNANSWERED_TYPES and not err.unknown_type:
            # A broken answer to a backend's command: that backend gets a CALLERROR now
            # instead of waiting for a timeout. Answers are never answered themselves.
            await self.commands.fail(
                err.unique_id,
                facts.format_error,
                f"the charge point's answer was malformed: {err.reason}",
            )
            return
        code = facts.malformed_code(err.unknown_type)
        await self._send_to_charger(build_call_error(err.unique_id, code, err.reason))

    async def _on_charger_call(self, frame: Frame) -> None:
        action = frame.action
        payload = frame.payload or {}
        facts = self.version.facts
        transactional = action in facts.transaction_actions
        transaction_id: int | None = None
        if action == "BootNotification":
            self.last_boot = frame
            spawn(self.journal.booted(payload))
        elif action == facts.status_action:
            self._record_status(frame)
        if not facts.charger_assigns_transaction_id and transactional:
            if action == "StartTransaction":
                transaction_id = await self.store.allocate_transaction_id(self.id)
                self.transaction_ids.add(transaction_id)
            else:
                named = payload.get("transactionId")
                # Past 64 bits it is none the proxy gave (and SQLite could not store it).
                transaction_id = named if type(named) is int and -(2**63) <= named < 2**63 else None
                # MeterValues outside a transaction is plain telemetry (OCPP 1.6 §4.7).
                transactional = transaction_id is not None or action != "MeterValues"
        key = session_key(action or "", payload, transaction_id)
        owner = self.sessions.owner_of(key)  # read before a stop ends the session
        if transactional:
            # The homeowner's record first; the outbox rows come just before the charger has
            # its answer (see _keep_unconfirmed).
            await self.sessions.on_charger_call(action or "", payload, transaction_id)
        card = card_of(action or "", payload)
        if card is not None:
            self.last_card = mask_card(card)
            self._changed()
        owner = self._owner_of(owner or self.sessions.owner_of(key), card)
        targets = tuple(
            link
            for link in self._preference
            if link.wants(transactional)
            and self._may_get(link, action or "", transactional, card, owner)
        )
        pending = PendingCall(frame, transaction_id, self._choose_primary(), targets)
        owner_link = self.links.get(owner or "")
        if owner_link is not None and (owner_link.connected or owner_link.opening):
            pending.primary = owner_link  # the owner answers for its session and its card
        elif card is not None and action in CARD_ANSWERED:
            pending.card = self.authorizer.check(
                card, () if owner else (link.id for link in targets if self._may_answer(link))
            )
        self._pending[frame.unique_id] = pending
        if pending.card is not None:
            await self._decide_card(pending)
            if not pending.done:
                self._watch(pending)
        elif pending.primary is None:
            await self._answer_locally(pending)
        else:
            self._watch(pending)
        for link in targets:
            delivery = Delivery(frame, transactional, pending, transaction_id)
            if transactional:
                pending.deliveries[link.id] = delivery
            await link.offer(delivery)

    def _owner_of(self, session_owner: str | None, card: str | None) -> str | None:
        """Who owns what this CALL concerns, as far as known before any backend answers.

        The session's owner (a remote start's claim included); else, for a card, its owner
        by home card, a recent acceptance or its route (:meth:`Authorizer.owner_of_card`).
        """
        if session_owner is not None and session_owner != LOCAL:
            return session_owner
        return self.authorizer.owner_of_card(card)

    def _may_get(
        self,
        link: BackendLink,
        action: str,
        transactional: bool,
        card: str | None,
        owner: str | None,
    ) -> bool:
        """Whether ``link`` gets this CALL: cards by their routes, sessions by share_sessions."""
        if action == "Authorize":
            return self.authorizer.asks(link.id, card)
        if transactional:
            return self.authorizer.may_see(link.id, owner)
        return True

    @staticmethod
    def _may_answer(link: BackendLink) -> bool:
        return link.connected or link.opening

    async def _decide_card(self, pending: PendingCall, *, final: bool = False) -> None:
        """Answer a card CALL once the answers so far decide it (see ``policy.authorization``).

        ``final`` at the deadline: backends still silent count as no answer. With no answer
        at all, the proxy answers by ``offline_authorization``.
        """
        check = pending.card
        if check is None or pending.done:
            return
        waiting = (
            ()
            if final
            else tuple(
                backend_id
                for backend_id in check.order
                if not check.answered(backend_id) and self._may_answer(self.links[backend_id])
            )
        )
        primary = pending.primary.id if pending.primary else None
        choice = self.authorizer.choose(check, primary, waiting)
        if choice is None:
            if waiting:
                return
            choice = await self.authorizer.offline(check.id_tag)
            if pending.done:
                return  # answered meanwhile (the store was read)
        _LOGGER.info(
            "%s: %s of card %s: %s (%s)%s",
            self.id,
            pending.frame.action,
            mask_card(check.id_tag),
            choice.status,
            choice.answer_from or "the proxy",
            f", owner {choice.owner}" if choice.owner else "",
        )
        if choice.owner is not None:
            self.authorizer.remember(check.id_tag, choice.owner)
        if choice.answer_from is not None:
            pending.primary = self.links[choice.answer_from]
            await self._answer_charger(pending, check.frames[choice.answer_from])
        else:
            await self._answer_locally(pending, status=choice.status, owner=choice.owner)
        if choice.owner is not None:
            frame = pending.frame
            key = session_key(frame.action or "", frame.payload or {}, pending.transaction_id)
            await self.sessions.on_card_owner(key, choice.owner)

    def _choose_primary(self) -> BackendLink | None:
        # preferred_provider first, then services in config order, then inbound backends. A
        # link still opening for the first time counts, so that the charger's first
        # BootNotification waits for it rather than being answered locally.
        for link in self._preference:
            if link.connected or link.opening:
                return link
        return None

    def _record_status(self, frame: Frame) -> None:
        payload = frame.payload or {}
        evse_id = payload.get("evseId")
        connector_id = payload.get("connectorId")
        key = str(connector_id) if evse_id is None else f"{evse_id}/{connector_id}"
        self._statuses[key] = frame
        self.connectors[key] = {
            "evse_id": evse_id,
            "connector_id": connector_id,
            "status": payload.get("status") or payload.get("connectorStatus"),
            "error_code": payload.get("errorCode"),
            "updated_at": iso_utc(time.time()),
        }
        if self.connectors[key]["status"] == "Faulted":
            self._fault(evse_id if evse_id is not None else connector_id, payload)
        self._changed()

    def _fault(self, where: Any, payload: dict[str, Any]) -> None:
        """A connector faulted: if a backend's session runs there, the homeowner hears of it."""
        for session in self.sessions.running():
            if session.connector in (where, None) and session.owner not in (None, LOCAL, HOME):
                alert = {
                    "at": iso_utc(time.time()),
                    "connector": where,
                    "owner": session.owner,
                    "transaction_id": session.transaction,
                    "error_code": payload.get("errorCode"),
                    "message": f"connector {where} faulted during {session.owner}'s session",
                }
                self.alerts.append(alert)
                _LOGGER.warning("%s: %s (%s)", self.id, alert["message"], alert["error_code"])

    def render(self, link: BackendLink, delivery: Delivery) -> str | None:
        """The text of ``delivery`` for ``link``: with the backend's own 1.6 transaction id.

        Returns None when the backend must not get the frame: a StopTransaction of a
        transaction that backend never got an id for (OCPP 1.6 §4.10).
        """
        charger_tx = delivery.transaction_id
        frame = delivery.frame
        if charger_tx is None or frame.action == "StartTransaction":
            return frame.raw
        backend_tx = self.transaction_ids.for_backend(charger_tx, link.id)
        if backend_tx is not None:
            return rewrite_transaction_id(frame.raw, charger_tx, backend_tx)
        if not self.transaction_ids.is_known(charger_tx):
            return frame.raw  # a transaction from before the proxy: its id is the charger's own
        if frame.action == "MeterValues":
            payload = {k: v for k, v in (frame.payload or {}).items() if k != "transactionId"}
            return build_call(frame.unique_id, "MeterValues", payload)
        _LOGGER.warning(
            "%s: %s not sent to %s: it has no id for transaction %s",
            self.id,
            frame.action,
            link.id,
            charger_tx,
        )
        return None

    def replay_for(self, link: BackendLink) -> list[Delivery]:
        """The last BootNotification and StatusNotifications, for a link that just came up."""
        if self.charger is None:
            return []
        frames = ([self.last_boot] if self.last_boot else []) + list(self._statuses.values())
        return [Delivery(frame, False, replay=True) for frame in frames]

    def on_delivery_dropped(self, link: BackendLink, delivery: Delivery) -> None:
        """A backend will not get a kept message after all: forget its outbox row."""
        delivery.dropped = True
        self.journal.outbox_dropped(delivery.outbox_id)

    def limit_hit(self, limit: str) -> None:
        """Count a refusal by one of the proxy's limits (``ocpp_proxy_limit_hits_total``)."""
        self.metrics.inc("ocpp_proxy_limit_hits_total", limit=limit)

    def log_frame(
        self,
        peer: str,
        direction: str,
        raw: str,
        head: tuple[int, str, str | None] | None = None,
    ) -> None:
        """Log a frame between the proxy and a backend."""
        self.journal.frame(peer, direction, raw, head)

    async def on_backend_answer(self, link: BackendLink, delivery: Delivery, frame: Frame) -> None:
        """A backend answered a charger CALL: keep its transaction id; maybe answer the charger."""
        charger_tx = delivery.transaction_id
        if (
            charger_tx is not None
            and delivery.frame.action == "StartTransaction"
            and frame.message_type == CALLRESULT
        ):
            backend_tx = (frame.payload or {}).get("transactionId")
            if type(backend_tx) is int:
                self.transaction_ids.record(charger_tx, link.id, backend_tx)
                await self.store.record_backend_transaction_id(
                    self.id, charger_tx, link.id, backend_tx
                )
                await self.sessions.on_backend_transaction(str(charger_tx), link.id, backend_tx)
        # Forgotten before the charger has its answer: a charger that has its answer sends
        # the message no more, so from then on nothing may send it to this backend again.
        await self.journal.outbox_done(delivery.outbox_id)
        pending = delivery.pending
        if pending is not None and not pending.done and pending.card is not None:
            self._card_answer(pending.card, link, frame)
            await self._decide_card(pending)
        elif pending is not None and not pending.done:
            if pending.primary is link:
                await self._answer_charger(pending, frame)
            else:
                pending.answers[link.id] = frame

    def _card_answer(self, check: CardCheck, link: BackendLink, frame: Frame) -> None:
        status = status_of(frame.payload) if frame.message_type == CALLRESULT else None
        if link.id not in check.order:
            return  # asked for its records only (its route sends the card elsewhere)
        if status is None:
            check.failed.add(link.id)
            return
        check.answers[link.id] = status
        check.frames[link.id] = frame
        if status == ACCEPTED:
            self.cards.accepted(check.id_tag, link.id)

    async def _answer_charger(self, pending: PendingCall, frame: Frame) -> None:
        self._finish(pending)
        self._answered_in(pending, "backend")
        text = frame.raw
        if frame.unique_id != pending.frame.unique_id:
            text = with_unique_id(text, pending.frame.unique_id)
        if pending.transaction_id is not None and pending.frame.action == "StartTransaction":
            backend_tx = (frame.payload or {}).get("transactionId")
            if type(backend_tx) is int:
                text = rewrite_transaction_id(text, backend_tx, pending.transaction_id)
        await self._keep_unconfirmed(pending)
        await self._send_to_charger(text)
        await self._answered(pending, pending.primary.id if pending.primary else LOCAL, frame)

    async def _keep_unconfirmed(self, pending: PendingCall) -> None:
        """Keep a transaction message for each backend that has not confirmed it yet.

        A charger keeps a transaction message until it is answered and sends it again after a
        reconnect (OCPP 1.6 §4.9; 2.0.1 E11): until its answer the charger is the message's
        durable copy. Once the charger has its answer, the proxy is, for every backend still
        waiting, so the rows are written (and committed) just before that answer goes out.
        A backend that answered in time, the primary among them, costs no write at all.
        """
        waiting = {
            backend_id: delivery
            for backend_id, delivery in pending.deliveries.items()
            if not (delivery.answered or delivery.dropped or delivery.outbox_id is not None)
        }
        if not waiting:
            return
        frame = pending.frame
        rows = await self.journal.outbox_add(
            list(waiting), frame.action or "", frame.raw, pending.transaction_id
        )
        for backend_id, delivery in waiting.items():
            delivery.outbox_id = rows.get(backend_id)
            if delivery.answered or delivery.dropped:  # confirmed while the row was written
                self.journal.outbox_dropped(delivery.outbox_id)

    async def _answered(self, pending: PendingCall, answered_by: str, answer: Frame) -> None:
        """The charger has its answer: note who started a session; re-apply the limit on boot."""
        frame = pending.frame
        key = transaction_key(frame.action or "", frame.payload or {}, pending.transaction_id)
        await self.sessions.on_start_answered(key, answered_by)
        if (
            frame.action == "BootNotification"
            and (answer.payload or {}).get("status") == "Accepted"
            and self.limits.booted()
        ):
            spawn(self.limits.apply())

    async def _answer_locally(
        self, pending: PendingCall, *, status: str | None = None, owner: str | None = None
    ) -> None:
        """The proxy answers the charger itself; ``status`` for a card's, ``owner`` its owner."""
        self._finish(pending)
        self._answered_in(pending, "local")
        frame = pending.frame
        payload = local_answer(
            self.version,
            frame.action or "",
            frame.payload or {},
            transaction_id=pending.transaction_id,
            heartbeat_interval_s=self.config.heartbeat_interval,
        )
        if payload is not None and status is not None:
            for info in ("idTagInfo", "idTokenInfo"):
                if isinstance(payload.get(info), dict):
                    payload[info]["status"] = status
        if payload is None:
            text = build_call_error(
                frame.unique_id,
                self.version.facts.not_implemented_error,
                f"{frame.action} is not an action of OCPP {self.version}",
            )
        else:
            text = build_call_result(frame.unique_id, payload)
        await self._keep_unconfirmed(pending)
        await self._send_to_charger(text)
        await self._answered(pending, owner or LOCAL, parse_frame(text))

    def _answered_in(self, pending: PendingCall, by: str) -> None:
        seconds = time.monotonic() - pending.received_at
        answers, waited = self._answer_counters[by]
        answers.inc()
        waited.inc(seconds)

    def _finish(self, pending: PendingCall) -> None:
        pending.done = True
        if self._pending.get(pending.frame.unique_id) is pending:
            del self._pending[pending.frame.unique_id]

    def _watch(self, pending: PendingCall) -> None:
        loop = asyncio.get_running_loop()
        pending.deadline = loop.time() + self.config.response_timeout
        self._deadlines.append(pending)
        if self._deadline_timer is None:
            self._deadline_timer = loop.call_at(pending.deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._deadline_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._deadlines and (self._deadlines[0].done or self._deadlines[0].deadline <= now):
            pending = self._deadlines.popleft()
            if pending.done:
                continue
            _LOGGER.info(
                "%s: no answer to %s from %s within %ss; answering %s",
                self.id,
                pending.frame.action,
                pending.primary.id if pending.primary else "-",
                self.config.response_timeout,
                "with the answers so far" if pending.card else "locally",
            )
            if pending.card is not None:
                spawn(self._decide_card(pending, final=True))
            else:
                spawn(self._answer_locally(pending))
        if self._deadlines:
            self._deadline_timer = loop.call_at(self._deadlines[0].deadline, self._on_deadline)

    def on_link_down(self, link: BackendLink) -> None:
        """A backend link went down: calls waiting for its answer get another primary."""
        if any(
            p.primary is link or (p.card is not None and link.id in p.card.order)
            for p in self._pending.values()
        ):
            spawn(self._reassign(link))

    async def _reassign(self, gone: BackendLink) -> None:
        # The next backend in preference order that got the call and has answered it or still
        # can; failing that, the proxy answers at once rather than at the deadline.
        for pending in [p for p in self._pending.values() if p.card is not None]:
            await self._decide_card(pending)  # the gone backend is waited for no more
        for pending in [p for p in self._pending.values() if p.primary is gone]:
            successor = next(
                (
                    link
                    for link in self._preference
                    if link is not gone
                    and link in pending.targets
                    and (link.id in pending.answers or link.connected or link.opening)
                ),
                None,
            )
            if successor is None:
                await self._answer_locally(pending)
            elif successor.id in pending.answers:
                await self._answer_charger(pending, pending.answers[successor.id])
            else:
                pending.primary = successor

    # -- status --------------------------------------------------------------------------

    @property
    def primary(self) -> BackendLink | None:
        """The backend whose answers the charger gets now, if any is connected."""
        return next((link for link in self._preference if link.connected), None)

    def snapshot(self) -> dict[str, Any]:
        """Return the charge point as ``/status`` shows it."""
        charger = self.charger
        primary = self.primary
        return {
            "id": self.id,
            "connected": charger is not None,
            "ocpp_version": self.version.value,
            "remote": charger.remote if charger else None,
            "connected_since": iso_utc(charger.connected_since) if charger else None,
            "last_message_at": iso_utc(self.last_message_at),
            "connectors": list(self.connectors.values()),
            "primary": primary.id if primary else None,
            "commands_queued": self.commands.depth,
            "sessions": [
                {"transaction_id": s.transaction, "connector": s.connector, "owner": s.owner}
                for s in self.sessions.running()
            ],
            "limit": self.limits.state,
            "alerts": list(self.alerts),
            "backends": [link.snapshot() for link in self.links.values()],
        }

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
