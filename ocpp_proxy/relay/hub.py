"""The hub of one charge point: where its frames are routed.

Data flows one way. Transports hand frames to the hub (:meth:`ChargerHub.on_charger_text`,
and :class:`LinkEndpoint` for a backend's socket); the hub routes them: charger CALLs into the
backend links' bounded queues (:mod:`~ocpp_proxy.relay.backend_link`), backend answers to the
charger CALL waiting for them (:mod:`~ocpp_proxy.relay.pending`), backend commands to the
composed :class:`~ocpp_proxy.relay.charger_commands.ChargerCommands`. Every write to a peer goes
through that peer's own send queue (:mod:`~ocpp_proxy.relay.sender`), so no read loop waits
for another peer. Policy (the arbiter) is consulted, not woven in; OCPP payload knowledge is in
:mod:`ocpp_proxy.protocol.messages`; the store is reached through the journal, which reports
faults instead of raising them on the frame's path, and the one durable step on the path (the
outbox rows just before the charger's answer) is :mod:`~ocpp_proxy.relay.keeper`'s.

Two hook points, for who extends the relay:

* :meth:`ChargerHub._choose_answer` picks the answer the charger gets to a CALL among the
  backends' answers, on every answer and once more at the deadline (today: the primary's, or
  the next backend's in preference order when the primary is gone); the backend it names is
  who answered (a StartTransaction's answerer owns a session no remote start claimed). A CALL
  that presents a card is answered by the card rules instead (:meth:`ChargerHub._decide_card`,
  :mod:`ocpp_proxy.policy.authorization`), whose store look-up (offline) does not fit the hook.
* :meth:`ChargerHub.render` renders a charger CALL for one backend link (today: the backend's
  own 1.6 transaction id); version translation per link plugs in there.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ocpp_proxy.clock import Clock, SystemClock, iso_utc
from ocpp_proxy.config import ProxyConfig, ServiceConfig
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.policy.authorization import ACCEPTED, HOME, card_of, mask_card, status_of
from ocpp_proxy.policy.decisions import AllowAll, Arbiter
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
from ocpp_proxy.protocol.messages import (
    Keep,
    charger_message_rule,
    connector_key,
    connector_status,
    ended_transaction,
    session_key,
    session_label,
    started_transaction,
    state_key,
    transaction_id_16,
)
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.authorizer import CARD_ANSWERED, Authorizer, CardCheck
from ocpp_proxy.relay.backend_link import BackendLink, Delivery, Direction, LinkState
from ocpp_proxy.relay.cards import CardBook
from ocpp_proxy.relay.charge_point import ChargePoint, ChargerConnection
from ocpp_proxy.relay.charger_commands import ChargerCommands, HomeownerResult
from ocpp_proxy.relay.command_queue import CommandQueue
from ocpp_proxy.relay.journal import CHARGER, Journal
from ocpp_proxy.relay.keeper import UnconfirmedKeeper, confirmed
from ocpp_proxy.relay.limit_keeper import LimitKeeper
from ocpp_proxy.relay.pending import AnsweredBy, PendingCall, PendingCalls
from ocpp_proxy.relay.sender import Peer, PeerSender
from ocpp_proxy.relay.sessions import LOCAL, SessionRecorder
from ocpp_proxy.relay.start_contest import StartContest
from ocpp_proxy.relay.store_health import StoreHealth
from ocpp_proxy.relay.transaction_ids import rewrite_transaction_id
from ocpp_proxy.relay.translated_links import LinkTranslations
from ocpp_proxy.security.schema import check_request
from ocpp_proxy.store import Store, StoreError
from ocpp_proxy.tasks import TaskSet
from ocpp_proxy.translation import Translator, translation_needed

_LOGGER = logging.getLogger(__name__)


class Upstream(Protocol):
    """The outbound WebSocket client of one service (see ``ocpp_proxy.transport.upstream``)."""

    def start(self) -> None:
        """Start dialling the service, and keep the link up until stopped."""
        ...

    async def stop(self) -> None:
        """Close the link and stop dialling."""
        ...


class LinkEndpoint:
    """What a transport holds of one backend link: it hands the hub the socket's events.

    Transports (the upstream client, the inbound endpoint) call :meth:`attach` when the
    WebSocket opens, :meth:`on_text` for every text frame, :meth:`detach` when it closes, and
    :meth:`set_state` for dialling states; all of it goes to the hub, which owns the link.
    """

    def __init__(self, hub: ChargerHub, link: BackendLink) -> None:
        self._hub = hub
        self.link = link
        self.id = link.id

    @property
    def last_error(self) -> str:
        """The link's last error, as ``/status`` shows it."""
        return self.link.last_error

    @last_error.setter
    def last_error(self, reason: str) -> None:
        self.link.last_error = reason

    def set_state(self, state: LinkState, error: str = "", *, opening: bool = False) -> None:
        """A dialling state change (see :meth:`BackendLink.set_state`)."""
        self._hub.link_state(self.link, state, error, opening=opening)

    async def attach(self, peer: Peer) -> None:
        """The backend's WebSocket is open."""
        await self._hub.attach_backend(self.link, peer)

    async def detach(self, reason: str, peer: Peer | None = None) -> None:
        """The backend's WebSocket closed (only ``peer``'s, if given)."""
        await self._hub.detach_backend(self.link, reason, peer)

    def on_text(self, raw: str) -> Coroutine[Any, Any, None]:
        """One text frame from the backend: the hub's handling of it, to be awaited.

        Not a coroutine of its own: one frame less per frame on the relay's path.
        """
        return self._hub.on_backend_text(self.link, raw)


UpstreamFactory = Callable[[LinkEndpoint, ServiceConfig, str], Upstream]


class ChargerHub:
    """Routes the frames of one charge point between its charger and its backends.

    Args:
        charge_point_id: the charge point's id (the last part of its URL).
        config: the proxy's configuration.
        store: where transaction messages, sessions and the message log are kept.
        home: the homeowner's inputs (current limit); shared by every charger of the house.
        cards: the house's cards (home cards, cards backends accepted); shared likewise.
        metrics: the proxy's metrics.
        arbiter: decides which backend commands reach the charger.
        upstream_factory: makes the outbound client of a service (None: no outbound links).
        on_change: called when something ``/status`` shows has changed.
        clock: deadlines, backoff and times shown (the system clock if None).
        health: the store's health, shared by every hub (one of its own if None).
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
        clock: Clock | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self.id = charge_point_id
        self.config = config
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.tasks = TaskSet(f"charge point {charge_point_id}")
        self._on_change = on_change
        self.journal = Journal(
            store,
            charge_point_id,
            durable_outbox=config.durable_outbox,
            message_log=config.message_log,
            metrics=self.metrics,
            clock=self.clock,
            health=health,
        )
        self.health = self.journal.health
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
            clock=self.clock,
        )
        self.point = ChargePoint(
            charge_point_id,
            config.ocpp_version,
            journal=self.journal,
            sessions=self.sessions,
            clock=self.clock,
            on_change=self._changed,
        )
        self._answer_counters = {
            by: (
                self.metrics.counter("ocpp_proxy_charger_answers_total", by=by),
                self.metrics.counter("ocpp_proxy_charger_answer_seconds_total", by=by),
            )
            for by in ("backend", "local")
        }
        self.home = home or HomeState()
        self.cards = cards or CardBook(config, store)
        self.authorizer = Authorizer(
            config, self.cards, clock=self.clock.monotonic, wall_clock=self.clock.time
        )
        #: The last card presented at the charger, masked (for displays; personal data).
        self.last_card = ""
        self.alerts: deque[dict[str, Any]] = deque(maxlen=20)
        self._upstream_factory = upstream_factory
        self._services = {s.id: s for s in config.ocpp_services if s.enabled}
        # The charger's last boot and connector statuses, by state key (kept durably too).
        self._state: dict[str, Frame] = {}
        self._boot_recorded: Frame | None = None
        self.pending = PendingCalls(self.clock, config.response_timeout, self._on_deadline)
        self._upstreams: dict[str, Upstream] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._limit_task: asyncio.Task[None] | None = None
        self.commands = CommandQueue(
            self.point.send,
            clock=self.clock,
            tasks=self.tasks,
            timeout=config.response_timeout,
            generic_error=self.version.facts.generic_error,
            on_full=lambda: self.limit_hit("command_queue"),
        )
        self.links: dict[str, BackendLink] = {}
        for service in self._services.values():
            self._add_link(service.id, Direction.OUTBOUND, service.version)
        # Inbound backends without a version of their own speak the charger's.
        self._fixed_versions = {
            b.id for b in config.inbound_backends if b.enabled and b.version is not None
        }
        for backend in config.inbound_backends:
            if backend.enabled:
                self._add_link(backend.id, Direction.INBOUND, backend.version or self.version)
        self.translations = LinkTranslations(
            charge_point_id,
            clock=self.clock,
            known_transactions=lambda: self.transaction_ids.charger_ids(),
            persist=self._keep_translation,
        )
        self.translations.update(self.version, self.links.values())
        self.keeper = UnconfirmedKeeper(
            charge_point_id,
            self.journal,
            self.links,
            clock=self.clock,
            tasks=self.tasks,
            response_timeout_s=config.response_timeout,
            version=lambda: self.version,
            forget_row=self._forget_row,
        )
        preferred = self.links.get(config.preferred_provider)
        others = [link for link in self.links.values() if link is not preferred]
        self._preference: list[BackendLink] = ([preferred] if preferred else []) + others
        ranks = {link.id: rank for rank, link in enumerate(self._preference)}
        self.charger_commands = ChargerCommands(
            self.point,
            self.commands,
            arbiter=arbiter or AllowAll(),
            starts=StartContest(
                config.start_race_window,
                lambda backend_id: ranks.get(backend_id, len(ranks)),
                self.clock,
            ),
            store=store,
            metrics=self.metrics,
            to_backend=self._answer_to_backend,
        )
        self.limits = LimitKeeper(
            charge_point_id,
            config,
            self.home,
            self.homeowner_command,
            lambda: self.version,
            on_change=self._changed,
        )

    def _add_link(self, backend_id: str, direction: Direction, version: OcppVersion) -> None:
        self.links[backend_id] = BackendLink(
            backend_id,
            direction,
            version=version,
            clock=self.clock,
            response_timeout=self.config.response_timeout,
            max_queue=self.config.outbox_max_messages,
            on_ready=self._pump,
            on_change=lambda _link: self._changed(),
        )

    # -- what the rest of the proxy reads --------------------------------------------------

    @property
    def charger(self) -> ChargerConnection | None:
        """The charger's connection, if it is connected."""
        return self.point.connection

    @property
    def version(self) -> OcppVersion:
        """The OCPP version the charger speaks (or is expected to)."""
        return self.point.version

    @property
    def connectors(self) -> dict[str, dict[str, Any]]:
        """Connector (1.6) or EVSE/connector (2.x) -> its last status, for displays."""
        return self.point.connectors

    @property
    def transaction_ids(self) -> Any:
        """The OCPP 1.6 transaction id map (charger id <-> each backend's)."""
        return self.point.transaction_ids

    @property
    def last_message_at(self) -> float | None:
        """When the charger last sent a frame (Unix s)."""
        return self.point.last_message_at

    @last_message_at.setter
    def last_message_at(self, at: float | None) -> None:
        self.point.last_message_at = at

    @property
    def last_boot(self) -> Frame | None:
        """The charger's last BootNotification, once what it says of the charger is recorded.

        A new one means the charger records in the store changed (Home Assistant's devices
        read them again then).
        """
        return self._boot_recorded

    @property
    def arbiter(self) -> Arbiter:
        """The arbiter commands to the charger pass."""
        return self.charger_commands.arbiter

    def endpoint(self, backend_id: str) -> LinkEndpoint:
        """The endpoint a transport feeds for backend ``backend_id``."""
        return LinkEndpoint(self, self.links[backend_id])

    async def homeowner_command(
        self, action: str, payload: dict[str, Any], actor: str = "homeowner"
    ) -> HomeownerResult:
        """Send a command to the charger as the homeowner (see :class:`ChargerCommands`)."""
        return await self.charger_commands.homeowner_command(action, payload, actor)

    def limit_hit(self, limit: str) -> None:
        """Count a refusal by one of the proxy's limits (``ocpp_proxy_limit_hits_total``)."""
        self.metrics.inc("ocpp_proxy_limit_hits_total", limit=limit)

    # -- lifetime --------------------------------------------------------------------------

    async def restore(self) -> None:
        """Take up where the proxy stopped: unconfirmed messages, ids, sessions, state.

        The state is the charger's last boot and statuses, replayed to a backend that comes up.
        """
        self.transaction_ids.load(await self.store.transaction_id_map(self.id))
        self.translations.load(await self.store.translation_load(self.id))
        await self.sessions.restore()
        for key, raw in (await self.journal.kept_state()).items():
            try:
                self._state[key] = parse_frame(raw)
            except FrameError:
                continue
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
                rule = charger_message_rule(self.version, frame.action or "", frame.payload or {})
                if rule.keep is not Keep.TRANSACTION:
                    rule = charger_message_rule(OcppVersion.V16, "StartTransaction", {})
                delivery = Delivery(frame, rule, None, row.transaction_id, outbox_id=row.id)
                for shed in link.add(delivery):
                    self._forget_row(shed)
            _LOGGER.info("%s: %d queued messages for %s", self.id, len(rows), backend_id)

    async def close(self) -> None:
        """Stop every outbound link and background task; finish the journal (shutdown)."""
        self.keeper.close()
        for task in self._draining.values():
            task.cancel()
        self._draining.clear()
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        await asyncio.gather(*(u.stop() for u in upstreams), return_exceptions=True)
        for link in self.links.values():
            sender = link.detach("the proxy is shutting down")
            if sender is not None:
                await sender.close()
        connection = self.point.connection
        if connection is not None:
            await connection.sender.close()
        await self.tasks.close()
        await self.journal.close()

    # -- the charger's connection ----------------------------------------------------------

    async def attach_charger(
        self, peer: Peer, version: OcppVersion, remote: str
    ) -> ChargerConnection:
        """The charger connected; replace an older connection of the same charge point.

        Starts (or keeps) an outbound link to every enabled service of the charger's version;
        a service of another version is marked refused with the reason.
        """
        old = self.point.connection
        sender = PeerSender(peer, f"charge point {self.id}", self.tasks, on_stalled=None)
        connection = ChargerConnection(peer, sender, version, remote, self.clock.time())
        self.point.connection = connection
        if old is not None:
            _LOGGER.info("%s reconnected from %s; closing its old connection", self.id, remote)
            await self._drop_charger_state("the charge point reconnected")
            await old.sender.close()
            await old.peer.close()
        if version is not self.version:
            # Another OCPP version (a firmware update): 1.6 connectors and 2.x EVSEs are named
            # apart, so what the old version reported would show beside the new.
            self.connectors.clear()
            self._state.clear()
            self.journal.forget_state()
        self.point.version = version
        for link in self.links.values():
            if (
                link.direction is Direction.INBOUND
                and not link.connected
                and link.id not in self._fixed_versions
            ):
                link.version = version
        self.translations.update(version, self.links.values())
        for service_id, service in self._services.items():
            self._start_upstream(self.links[service_id], service, version)
        self.journal.connected()
        self.limits.connected()
        self._limit_task = self.tasks.spawn(self.limits.after_connect())
        self._changed()
        return connection

    async def detach_charger(self, connection: ChargerConnection) -> None:
        """The charger's connection closed: drain the upstream links, then close them."""
        await connection.sender.close()
        if self.point.connection is not connection:
            return  # an old connection that was replaced
        self.point.connection = None
        if self._limit_task is not None:
            self._limit_task.cancel()
        self.journal.disconnected()
        await self._drop_charger_state("the charge point disconnected")
        for service_id in list(self._upstreams):
            self._draining[service_id] = self.tasks.spawn(self._drain_and_close(service_id))
        self._changed()

    def _start_upstream(
        self, link: BackendLink, service: ServiceConfig, version: OcppVersion
    ) -> None:
        draining = self._draining.pop(service.id, None)
        if draining is not None:
            draining.cancel()
        if service.version is not version and not translation_needed(version, service.version):
            self._stop_upstream_soon(service.id)
            self.link_state(
                link,
                LinkState.REFUSED,
                f"the service speaks OCPP {service.version}, the charge point {version}",
            )
            return
        if service.id in self._upstreams or self._upstream_factory is None:
            return
        self.link_state(link, LinkState.CONNECTING, opening=True)
        upstream = self._upstream_factory(LinkEndpoint(self, link), service, self.id)
        self._upstreams[service.id] = upstream
        upstream.start()

    def _stop_upstream_soon(self, service_id: str) -> None:
        upstream = self._upstreams.pop(service_id, None)
        if upstream is not None:
            self.tasks.spawn(upstream.stop())

    async def _drain_and_close(self, service_id: str) -> None:
        # A slower backend must not lose the charger's last StopTransaction because the
        # charger hung up first: let it answer what it was sent, for a bounded time.
        link = self.links[service_id]
        await link.drained(self.config.drain_timeout)
        upstream = self._upstreams.pop(service_id, None)
        self._draining.pop(service_id, None)
        if upstream is not None:
            await upstream.stop()
        self.link_state(link, LinkState.IDLE)

    async def _drop_charger_state(self, reason: str) -> None:
        # Calls the charger is gone for are answered by nobody: it keeps them and sends them
        # again (OCPP 1.6 §4.9), so copies not sent to a backend yet are withdrawn: that
        # backend gets the charger's resend only, not both.
        for pending in self.pending.settle_all(AnsweredBy.CHARGER_GONE):
            for backend_id, delivery in pending.deliveries.items():
                self.links[backend_id].withdraw(delivery)
        await self.commands.fail_all(reason)

    # -- backend links ----------------------------------------------------------------------

    def link_state(
        self, link: BackendLink, state: LinkState, error: str = "", *, opening: bool = False
    ) -> None:
        """A dialling state change; a first attempt that failed re-routes calls waiting."""
        if link.set_state(state, error, opening=opening):
            self._link_gone(link)

    async def attach_backend(self, link: BackendLink, peer: Peer) -> None:
        """The backend's WebSocket is open: replay the charger's state, then send the queue."""
        old = link.detach("replaced by a new connection")
        if old is not None:
            await old.close()
            await old.peer.close()
        sender = PeerSender(
            peer,
            f"backend {link.id}",
            self.tasks,
            on_stalled=lambda reason: self._backend_stalled(link, peer, reason),
        )
        for given_up in link.attach(sender, self._replay()):
            self._give_up(link, given_up)
        self._pump(link)

    async def detach_backend(self, link: BackendLink, reason: str, peer: Peer | None) -> None:
        """The backend's WebSocket is gone (only ``peer``'s connection, if given)."""
        if peer is not None and (link.sender is None or link.sender.peer is not peer):
            return  # a connection that was replaced already
        sender = link.detach(reason)
        if sender is None:
            return
        self._link_gone(link)
        await sender.close()
        await sender.peer.close()

    def _backend_stalled(self, link: BackendLink, peer: Peer, reason: str) -> None:
        # A backend that does not read is dropped, never allowed to hold up anyone else; its
        # transport reconnects (outbound) or it dials in again (inbound).
        _LOGGER.warning("%s: dropping backend %s: %s", self.id, link.id, reason)
        self.tasks.spawn(self.detach_backend(link, f"dropped: {reason}", peer))

    def _replay(self) -> list[Delivery]:
        """The charger's last boot and statuses, for a link that just came up."""
        if self.point.connection is None:
            return []
        rule = charger_message_rule(self.version, "BootNotification", {})
        return [Delivery(frame, rule, replay=True) for frame in self._state.values()]

    def _answer_to_backend(self, link: BackendLink, text: str) -> None:
        """An answer to a backend's command, in the backend's version (translated if need be)."""
        translator = self.translations.get(link.id)
        if translator is None:
            self._to_backend(link, text)
            return
        self._to_backend(link, self.translations.answer_to_backend(translator, text))
        follow_ups = self.translations.follow_ups(translator)
        if follow_ups:
            # After the answer, as the charger would send them: queued like its own CALLs.
            rule = charger_message_rule(OcppVersion.V16, "Heartbeat", {})
            for frame in follow_ups:
                for shed in link.add(Delivery(frame, rule)):
                    self._forget_row(shed)
            self._pump(link)

    def _to_backend(self, link: BackendLink, text: str) -> None:
        sender = link.sender
        if sender is None:
            return
        self.journal.frame(link.id, "out", text)
        sender.send(text)

    def _pump(self, link: BackendLink) -> None:
        """Send the link's next delivery if it may send one (never waits)."""
        translator = self.translations.get(link.id)
        while (delivery := link.next_to_send()) is not None:
            text = self._render(link, delivery, translator)
            if isinstance(text, Frame):
                # The backend's version cannot carry it: the proxy answers in its place, and
                # the link waits for that as for an answer (the charger's answers stay in order).
                link.answered_in_place(delivery)
                self.tasks.spawn(self._answered_in_place(link, delivery, text))
                return
            if text is None:
                link.skip(delivery)
                self._forget_row(delivery)
                continue
            sent = link.sent(delivery, text)
            # Untranslated, the CALL's head is the charger's (under the unique id sent).
            head = (
                (CALL, link.in_flight_id or "", delivery.frame.action)
                if translator is None
                else None
            )
            self.journal.frame(link.id, "out", sent, head)
            return  # one CALL in flight per link (OCPP-J 1.6 §4.1.1): nothing more to send

    async def _answered_in_place(
        self, link: BackendLink, delivery: Delivery, answer: Frame
    ) -> None:
        try:
            await self._on_backend_answer(link, delivery, answer)
        finally:
            link.finish(delivery)
            self._pump(link)

    def _keep_translation(
        self, backend_id: str, transaction_id: str, state: dict[str, Any] | None
    ) -> None:
        """Keep what a translated link needs after a restart (``seqNo``, a 1.6 backend's id)."""
        self.journal.later(
            "keeping a translation's state",
            lambda: self.store.translation_put(self.id, backend_id, transaction_id, state),
        )

    def _forget_row(self, delivery: Delivery) -> None:
        self.journal.outbox_dropped(delivery.outbox_id)
        delivery.outbox_id = None

    def _give_up(self, link: BackendLink, delivery: Delivery) -> None:
        self.metrics.inc("ocpp_proxy_deliveries_given_up_total", backend=link.id)
        _LOGGER.error(
            "%s: gave up sending %s (%s) to %s after %d attempts",
            self.id,
            delivery.frame.action,
            session_label(
                self.version,
                delivery.frame.action or "",
                delivery.frame.payload or {},
                delivery.transaction_id,
            ),
            link.id,
            delivery.attempts,
        )
        self._forget_row(delivery)

    def render(self, link: BackendLink, delivery: Delivery) -> str | Frame | None:
        """The text of ``delivery`` for ``link``: with the backend's own 1.6 transaction id.

        For a link of another OCPP version, the translated text (docs/translation.md), or the
        CALLRESULT frame the proxy answers with in that backend's place when its version cannot
        carry the message. Returns None when the backend must not get the frame: a
        StopTransaction of a transaction that backend never got an id for (OCPP 1.6 §4.10).
        """
        return self._render(link, delivery, self.translations.get(link.id))

    def _render(
        self, link: BackendLink, delivery: Delivery, translator: Translator | None
    ) -> str | Frame | None:
        if translator is not None:
            return self.translations.render(translator, delivery)
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

    # -- charger -> backends ---------------------------------------------------------------

    async def on_charger_text(self, connection: ChargerConnection, raw: str) -> None:
        """Handle one text frame from the charger (OCPP-J 1.6 §4)."""
        if connection is not self.point.connection:
            return
        self.point.last_message_at = now = self.clock.time()
        self.journal.seen(now)
        version = self.version
        try:
            frame = parse_frame(
                raw,
                self.config.max_frame_bytes,
                version.facts.message_types,
                unique_keys=self.config.strict_charger_validation,
            )
        except FrameError as err:
            self.journal.frame(CHARGER, "in", raw)
            await self._charger_frame_error(err, raw)
            return
        kind = frame.message_type
        self.journal.frame(CHARGER, "in", raw, (kind, frame.unique_id, frame.action))
        if kind == CALL:
            if self.config.strict_charger_validation:
                if not self._charger_call_conforms(connection, frame):
                    return
                await self._on_charger_call(frame)
            else:
                await self._on_charger_call(frame)
                # After the frame went on its way: the check (~0.12 ms for a 1.6 MeterValues,
                # ~0.17 ms for a 2.x TransactionEvent) then costs CPU but not latency.
                self._charger_call_conforms(connection, frame)
        elif kind == SEND:
            # OCPP 2.1 SEND: never answered, so it needs no queue; every connected backend.
            for link in self._preference:
                if self.translations.get(link.id) is None:  # 1.6 has no SEND
                    self._to_backend(link, frame.raw)
        elif kind == CALLRESULTERROR:
            _LOGGER.warning("%s reports a bad CALLRESULT: %s", self.id, frame.error)
        elif not await self.commands.on_answer(frame):
            _LOGGER.info("%s answered unknown unique id %s; dropped", self.id, frame.unique_id)

    def _charger_call_conforms(self, connection: ChargerConnection, frame: Frame) -> bool:
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
        self.point.send(build_call_error(frame.unique_id, violation.code, violation.description))
        return False

    async def _charger_frame_error(self, err: FrameError, raw: str) -> None:
        _LOGGER.warning("%s sent a malformed frame (%s): %.200s", self.id, err.reason, raw)
        if err.limit is not None:
            self.limit_hit(err.limit)
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
        self.point.send(build_call_error(err.unique_id, code, err.reason))

    async def _on_charger_call(self, frame: Frame) -> None:
        """Forward a charger CALL to every backend that should get it, then see it answered.

        Forward first, record after: the only store write the charger's answer may wait for is
        the outbox row of a transaction message a backend has not confirmed by then.
        """
        action = frame.action or ""
        payload = frame.payload or {}
        rule = charger_message_rule(self.version, action, payload)
        transactional = rule.keep is Keep.TRANSACTION
        transaction_id: int | None = None
        if transactional and not self.version.facts.charger_assigns_transaction_id:
            if action == "StartTransaction":
                transaction_id = await self._allocate_transaction_id()
            else:
                transaction_id = transaction_id_16(payload)
        key = state_key(action, payload)
        if key is not None:
            self._keep_state(key, frame)
        card = card_of(action, payload)
        owner: str | None = None
        if card is None and not transactional:
            # Most frames (Heartbeat, StatusNotification, ...): no card, no session.
            targets = tuple(link for link in self._preference if link.wants(rule))
        else:
            if card is not None:
                self.last_card = mask_card(card)
                self._changed()
            session = session_key(action, payload, transaction_id)
            owner = self._owner_of(action, payload, session, card)
            if transactional:
                if ended_transaction(action, payload):
                    self.authorizer.end_session(session)
                elif owner is not None:
                    self.authorizer.own_session(session, owner)
            targets = tuple(
                link
                for link in self._preference
                if link.wants(rule) and self._may_get(link, action, transactional, card, owner)
            )
        pending = PendingCall(frame, transaction_id, self._choose_primary(), targets)
        owner_link = self.links.get(owner or "")
        owner_up = owner_link is not None and self._may_answer(owner_link)
        if owner_up:
            pending.primary = owner_link  # the owner answers for its session and its card
        if card is not None and action in CARD_ANSWERED:
            pending.card = self.authorizer.check(card, self._judges(owner, owner_up, targets))
        watch = pending.primary is not None if pending.card is None else bool(pending.card.order)
        self.pending.add(pending, watch=watch)
        for link in targets:
            delivery = Delivery(frame, rule, pending, transaction_id)
            if transactional:
                pending.deliveries[link.id] = delivery
            for shed in link.add(delivery):
                self._forget_row(shed)
            self._pump(link)
        if transactional:
            self.sessions.note_start(action, payload, transaction_id)
            self.sessions.note_end(action, payload, transaction_id)
            self.journal.later(
                "recording a session",
                lambda: self.sessions.on_charger_call(action, payload, transaction_id),
            )
        if pending.card is not None:
            await self._decide_card(pending)
        elif pending.primary is None and self.pending.settle(pending, AnsweredBy.LOCAL):
            await self._answer_locally(pending)

    def _owner_of(
        self, action: str, payload: dict[str, Any], session: str | None, card: str | None
    ) -> str | None:
        """Who owns what this CALL concerns, as far as known before any backend answers.

        The session's owner (``session`` is its key), or the backend whose remote start a
        start message answers; else, for a card, its owner by home card, a recent acceptance
        or its route (:meth:`Authorizer.owner_of_card`).
        """
        owner = self.authorizer.session_owner(session) or self.sessions.owner_of(session)
        if owner is None:
            owner = self.sessions.start_claimant(action, payload)
        if owner is not None and owner != LOCAL:
            return owner
        return self.authorizer.owner_of_card(card, remembered=action != "Authorize")

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

    def _judges(
        self, owner: str | None, owner_up: bool, targets: tuple[BackendLink, ...]
    ) -> tuple[str, ...]:
        """Whose verdict on a card counts: its known owner's, else every asked backend's.

        None when the owner is known but down: the offline rule decides then.
        """
        if owner is None:
            return tuple(link.id for link in targets if self._may_answer(link))
        return (owner,) if owner_up else ()

    def _card_answer(self, check: CardCheck, link: BackendLink, frame: Frame) -> None:
        """Note a backend's verdict on a card (a CALLERROR or no status counts as none)."""
        if link.id not in check.order:
            return  # it got the call for its records only (the card's owner was known)
        status = status_of(frame.payload) if frame.message_type == CALLRESULT else None
        if status is None:
            check.failed.add(link.id)
            return
        check.answers[link.id] = status
        check.frames[link.id] = frame
        if status == ACCEPTED:
            self.cards.accepted(check.id_tag, link.id)

    async def _decide_card(self, pending: PendingCall, *, final: bool = False) -> None:
        """Answer a card CALL once the verdicts so far decide it (``policy.authorization``).

        ``final`` at the deadline (the call is settled already): backends still silent count
        as no answer. With no verdict at all the proxy answers by ``offline_authorization``.
        """
        check = pending.card
        if check is None or (pending.done and not final):
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
        by = AnsweredBy.BACKEND if choice.answer_from else AnsweredBy.LOCAL
        if not final and not self.pending.settle(pending, by):
            return  # answered meanwhile (while the known cards were read)
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
        else:
            self.authorizer.forget(check.id_tag)
        if choice.answer_from is not None:
            pending.primary = self.links[choice.answer_from]
            await self._answer_charger(
                pending, choice.answer_from, check.frames[choice.answer_from]
            )
        else:
            await self._answer_locally(pending, status=choice.status, owner=choice.owner)
        if choice.owner is not None:
            frame, owner = pending.frame, choice.owner
            key = session_key(frame.action or "", frame.payload or {}, pending.transaction_id)
            if not ended_transaction(frame.action or "", frame.payload or {}):
                self.authorizer.own_session(key, owner)
            self.journal.later(
                "recording a session's owner", lambda: self.sessions.on_card_owner(key, owner)
            )

    async def _allocate_transaction_id(self) -> int:
        """A new charger-side 1.6 transaction id (OCPP 1.6 §4.8); from memory if the store fails."""
        try:
            transaction_id = await self.store.allocate_transaction_id(self.id)
        except StoreError as err:
            self.health.failed(self.id, "allocating a transaction id", err)
            transaction_id = self.transaction_ids.next_free(int(self.clock.time()))
            _LOGGER.error(
                "%s: transaction id %d given out from memory (the store fails)",
                self.id,
                transaction_id,
            )
        else:
            self.health.succeeded()
        self.transaction_ids.add(transaction_id)
        return transaction_id

    def _choose_primary(self) -> BackendLink | None:
        # preferred_provider first, then services in config order, then inbound backends. A
        # link still opening for the first time counts, so that the charger's first
        # BootNotification waits for it rather than being answered locally.
        for link in self._preference:
            if link.connected or link.opening:
                return link
        return None

    def _keep_state(self, key: str, frame: Frame) -> None:
        self._state[key] = frame
        self.journal.keep_state(key, frame.raw)
        payload = frame.payload or {}
        if frame.action == "BootNotification":
            self.journal.booted(payload, then=lambda: self._boot_was_recorded(frame))
            return
        evse_id = payload.get("evseId")
        connector_id = payload.get("connectorId")
        where = connector_key(payload)
        self.connectors[where] = {
            "evse_id": evse_id,
            "connector_id": connector_id,
            "status": connector_status(payload),
            "error_code": payload.get("errorCode"),
            "updated_at": iso_utc(self.clock.time()),
        }
        if self.connectors[where]["status"] == "Faulted":
            self._fault(evse_id if evse_id is not None else connector_id, payload)
        self._changed()

    def _boot_was_recorded(self, frame: Frame) -> None:
        self._boot_recorded = frame
        self._changed()

    def _fault(self, where: Any, payload: dict[str, Any]) -> None:
        """A connector faulted: if a backend's session runs there, the homeowner hears of it."""
        for session in self.sessions.running():
            if session.connector in (where, None) and session.owner not in (None, LOCAL, HOME):
                alert = {
                    "at": iso_utc(self.clock.time()),
                    "connector": where,
                    "owner": session.owner,
                    "transaction_id": session.transaction,
                    "error_code": payload.get("errorCode"),
                    "message": f"connector {where} faulted during {session.owner}'s session",
                }
                self.alerts.append(alert)
                _LOGGER.warning("%s: %s (%s)", self.id, alert["message"], alert["error_code"])

    # -- backends -> charger -----------------------------------------------------------------

    async def on_backend_text(self, link: BackendLink, raw: str) -> None:
        """Handle one text frame from a backend (OCPP-J 1.6 §4)."""
        link.last_message_at = self.clock.time()
        try:
            # Strict with backends: a duplicate key in their JSON is refused (no ambiguity).
            frame = parse_frame(
                raw,
                self.config.max_frame_bytes,
                link.version.facts.message_types,
                unique_keys=True,
            )
        except FrameError as err:
            self.journal.frame(link.id, "in", raw)
            self._backend_frame_error(link, err, raw)
            return
        kind = frame.message_type
        self.journal.frame(link.id, "in", raw, (kind, frame.unique_id, frame.action))
        translator = self.translations.get(link.id)
        if kind == CALL:
            if translator is not None:
                # Into the charger's version first: checks, arbiter and queue decide on that.
                translated = self.translations.command(translator, link, frame)
                if isinstance(translated, str):
                    await self.charger_commands.answered_untranslated(link, frame, translated)
                    return
                frame = translated
            await self.charger_commands.on_backend_call(link, frame)
        elif kind == SEND:
            if translator is None:
                await self.charger_commands.on_backend_send(link, frame)
            else:
                _LOGGER.info(
                    "%s: SEND %s from %s dropped: 1.6 has no SEND", self.id, frame.action, link.id
                )
        elif kind == CALLRESULTERROR:
            _LOGGER.warning("%s reports a bad CALLRESULT: %s", link.id, frame.error)
        elif (delivery := link.take_answer(frame.unique_id)) is None:
            _LOGGER.info("%s answered unknown unique id %s; dropped", link.id, frame.unique_id)
        else:
            if translator is not None:
                frame = self.translations.answer_from_backend(translator, delivery, frame)
            try:
                await self._on_backend_answer(link, delivery, frame)
            finally:
                link.finish(delivery)
                self._pump(link)

    def _backend_frame_error(self, link: BackendLink, err: FrameError, raw: str) -> None:
        _LOGGER.warning("%s sent a malformed frame (%s): %.200s", link.id, err.reason, raw)
        if err.limit is not None:
            self.limit_hit(err.limit)
        if err.unique_id is not None and (
            err.unknown_type or err.message_type not in UNANSWERED_TYPES
        ):
            code = link.version.facts.malformed_code(err.unknown_type)
            self._to_backend(link, build_call_error(err.unique_id, code, err.reason))

    async def _on_backend_answer(self, link: BackendLink, delivery: Delivery, frame: Frame) -> None:
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
                await self.journal.guard(
                    "recording a backend transaction id",
                    self.store.record_backend_transaction_id(
                        self.id, charger_tx, link.id, backend_tx
                    ),
                )
                self.journal.later(
                    "recording a backend transaction id",
                    lambda: self.sessions.on_backend_transaction(
                        str(charger_tx), link.id, backend_tx
                    ),
                )
        # Forgotten before the charger has its answer: a charger that has its answer sends
        # the message no more, so from then on nothing may send it to this backend again.
        if delivery.outbox_id is not None:
            await self.journal.outbox_done(delivery.outbox_id)
            delivery.outbox_id = None
        pending = delivery.pending
        if pending is None:
            return
        if pending.done:  # answered already: this confirmation may be awaited, though
            confirmed(pending)
            return
        pending.answers[link.id] = frame
        if pending.card is not None:
            self._card_answer(pending.card, link, frame)
            await self._decide_card(pending)
            return
        chosen = self._choose_answer(pending, final=False)
        if chosen is not None and self.pending.settle(pending, AnsweredBy.BACKEND):
            await self._answer_charger(pending, *chosen)

    def _choose_answer(self, pending: PendingCall, *, final: bool) -> tuple[str, Frame] | None:
        """The answer the charger gets to ``pending``, and whose it is; None: not (yet) one.

        Hook: where the answer is chosen among the backends' answers (``pending.answers`` by
        backend id; ``pending.targets`` got the call). Called on every backend answer
        (``final`` False: None waits for more), and once more at the deadline or when no
        backend that got the call can still answer (``final`` True: None means the proxy
        answers itself). Today: the primary's answer as soon as it is there (a successor's,
        once the primary is gone).
        """
        primary = pending.primary
        if primary is None or primary.id not in pending.answers:
            return None
        return primary.id, pending.answers[primary.id]

    async def _answer_charger(self, pending: PendingCall, backend_id: str, frame: Frame) -> None:
        self._answered_in(pending, "backend")
        text = frame.raw
        if frame.unique_id != pending.frame.unique_id:
            text = with_unique_id(text, pending.frame.unique_id)
        if pending.transaction_id is not None and pending.frame.action == "StartTransaction":
            backend_tx = (frame.payload or {}).get("transactionId")
            if type(backend_tx) is int:
                text = rewrite_transaction_id(text, backend_tx, pending.transaction_id)
        if pending.deliveries:  # a transaction message: rows for backends yet to confirm it
            await self.keeper.keep(pending)
        self.point.send(text, (frame.message_type, pending.frame.unique_id, None))
        self._answered(pending, backend_id, frame)

    async def _answer_locally(
        self, pending: PendingCall, *, status: str | None = None, owner: str | None = None
    ) -> None:
        """The proxy answers the charger itself; ``status`` for a card's, ``owner`` its owner."""
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
        await self.keeper.keep(pending)
        self.point.send(text)
        self._answered(pending, owner or LOCAL, parse_frame(text))

    def _answered(self, pending: PendingCall, answered_by: str, answer: Frame) -> None:
        """The charger has its answer: note who started a session; re-apply the limit on boot."""
        # A settled call may wait in the deadline queue a while: keep no more of it than needed.
        pending.answers = {}
        pending.card = None
        if not self.keeper.owes(pending):
            pending.deliveries = {}
        frame = pending.frame
        key = started_transaction(frame.action or "", frame.payload or {}, pending.transaction_id)
        if key is not None:
            self.journal.later(
                "recording a session's owner",
                lambda: self.sessions.on_start_answered(key, answered_by),
            )
        if (
            frame.action == "BootNotification"
            and (answer.payload or {}).get("status") == "Accepted"
            and self.limits.booted()
        ):
            self.tasks.spawn(self.limits.apply())

    def _answered_in(self, pending: PendingCall, by: str) -> None:
        seconds = self.clock.monotonic() - pending.received_at
        answers, waited = self._answer_counters[by]
        answers.inc()
        waited.inc(seconds)

    def _on_deadline(self, pending: PendingCall) -> None:
        # Settled already by PendingCalls: nobody else answers it now.
        if pending.card is not None:
            _LOGGER.info(
                "%s: not every backend judged the card of %s within %ss; deciding on the rest",
                self.id,
                pending.frame.action,
                self.config.response_timeout,
            )
            self.tasks.spawn(self._decide_card(pending, final=True))
            return
        chosen = self._choose_answer(pending, final=True)
        if chosen is not None:
            self.tasks.spawn(self._answer_charger(pending, *chosen))
            return
        _LOGGER.info(
            "%s: no answer to %s from %s within %ss; answering locally",
            self.id,
            pending.frame.action,
            pending.primary.id if pending.primary else "-",
            self.config.response_timeout,
        )
        self.tasks.spawn(self._answer_locally(pending))

    def _link_gone(self, gone: BackendLink) -> None:
        """A backend link went down: calls waiting for its answer get another primary.

        The next backend in preference order that got the call and has answered it or still
        can; failing that, the proxy answers at once rather than at the deadline.
        """
        for pending in self.pending:
            if pending.card is not None and gone.id in pending.card.order:
                self.tasks.spawn(self._decide_card(pending))  # it is waited for no more
        for pending in self.pending.waiting_for(gone):
            if pending.card is not None:
                continue
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
                if self.pending.settle(pending, AnsweredBy.LINK_GONE):
                    chosen = self._choose_answer(pending, final=True)
                    self.tasks.spawn(
                        self._answer_charger(pending, *chosen)
                        if chosen is not None
                        else self._answer_locally(pending)
                    )
                continue
            pending.primary = successor
            chosen = self._choose_answer(pending, final=False)
            if chosen is not None and self.pending.settle(pending, AnsweredBy.BACKEND):
                self.tasks.spawn(self._answer_charger(pending, *chosen))
        for pending in self.pending:
            confirmed(pending)

    # -- status ------------------------------------------------------------------------------

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
            "last_card": self.last_card or None,
            "alerts": list(self.alerts),
            "backends": [
                {
                    **link.snapshot(),
                    "version": link.version.value,
                    "translated": self.translations.get(link.id) is not None,
                }
                for link in self.links.values()
            ],
        }

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
