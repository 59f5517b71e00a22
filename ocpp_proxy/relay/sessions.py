"""Charging sessions of one charge point, recorded from what the charger reports.

A session is a transaction: OCPP 1.6 StartTransaction, MeterValues, StopTransaction (§4.8, §4.7,
§4.10) or OCPP 2.0.1 TransactionEvent Started / Updated / Ended (E01-E07). Its owner is the
backend whose accepted remote start began it (1.6 RemoteStartTransaction §5.11; 2.0.1
RequestStartTransaction F01, matched by ``remoteStartId``), else whoever answered the charger's
start: the primary backend for a local start (an RFID card, say), or ``local`` when the proxy
answered it itself.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.metering import LiveMeter
from ocpp_proxy.policy.decisions import RunningSession
from ocpp_proxy.relay.meter_values import meter_samples, parse_timestamp
from ocpp_proxy.store import Store

_LOGGER = logging.getLogger(__name__)

#: The owner of a session the proxy's local fallback answered.
LOCAL = "local"

#: How many recent sessions keep their transaction id -> session id entry (late answers).
_RECENT = 256


@dataclass(frozen=True, slots=True, eq=False)
class RemoteStart:
    """A backend's remote start the charger accepted, waiting for its transaction."""

    backend_id: str
    connector_id: int | None
    id_tag: str | None
    remote_start_id: int | None
    at: float  # monotonic s


class SessionRecorder:
    """Writes the sessions of one charge point to the store.

    Args:
        store: the proxy's store.
        charge_point_id: the charge point.
        tariffs: backend id -> (price per kWh, currency), for the revenue of its sessions.
        claim_window_s: how long an accepted remote start claims the next matching start (s).
        on_meter: called when ``live`` changed: a session started, got meter values, ended.
    """

    def __init__(
        self,
        store: Store,
        charge_point_id: str,
        *,
        tariffs: Mapping[str, tuple[float, str]],
        claim_window_s: float,
        on_meter: Callable[[], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.id = charge_point_id
        self.tariffs = dict(tariffs)
        self.claim_window_s = claim_window_s
        self.clock = clock
        self._sessions: OrderedDict[str, int] = OrderedDict()  # transaction id -> session id
        self._running: dict[str, RunningSession] = {}
        self._unowned: set[str] = set()
        self._claims: list[RemoteStart] = []
        #: Newest readings of each running session, by transaction id (memory only).
        self.live: dict[str, LiveMeter] = {}
        self._on_meter = on_meter

    async def restore(self) -> None:
        """Pick up the sessions that were open when the proxy stopped."""
        for row in await self.store.open_sessions(self.id):
            self._sessions[row.transaction_id] = row.id
            where = row.evse_id if row.evse_id is not None else row.connector_id
            self._running[row.transaction_id] = RunningSession(row.transaction_id, where, row.owner)
            self.live[row.transaction_id] = LiveMeter(row.started_at, row.meter_start_wh)

    def running(self) -> tuple[RunningSession, ...]:
        """The sessions the charger is running now, with their owners."""
        return tuple(self._running.values())

    # -- what the charger says -------------------------------------------------------------

    def note_start(self, action: str, payload: dict[str, Any], transaction_id: int | None) -> None:
        """A session's start, known at once (the arbiter, displays and events read it).

        1.6 StartTransaction (§4.8) or the first 2.x TransactionEvent of a transaction (E01):
        the session runs from now on, before :meth:`on_charger_call` writes it down behind the
        frame's path.
        """
        now = self.clock.time()
        if action == "StartTransaction" and transaction_id is not None:
            key = str(transaction_id)
            if key not in self._running:
                self._begin(
                    key,
                    _int(payload.get("connectorId")),
                    _str(payload.get("idTag")),
                    None,
                    parse_timestamp(payload.get("timestamp"), now),
                    _number(payload.get("meterStart")),
                )
        elif action == "TransactionEvent" and payload.get("eventType") != "Ended":
            info = _dict(payload.get("transactionInfo"))
            named = _str(info.get("transactionId"))
            if named is None or named in self._running:
                return
            if named in self._sessions and payload.get("eventType") != "Started":
                return
            evse = _dict(payload.get("evse"))
            where = _int(evse.get("id"))
            self._begin(
                named,
                where if where is not None else _int(evse.get("connectorId")),
                _str(_dict(payload.get("idToken")).get("idToken")),
                _int(info.get("remoteStartId")),
                parse_timestamp(payload.get("timestamp"), now),
                None,
            )

    def note_end(self, action: str, payload: dict[str, Any], transaction_id: int | None) -> None:
        """A session's end, known at once (the arbiter reads it); recorded later.

        1.6 StopTransaction (§4.10) or 2.x TransactionEvent ``Ended`` (E06): the session stops
        running now, before :meth:`on_charger_call` writes it down behind the frame's path.
        """
        if action == "StopTransaction" and transaction_id is not None:
            key: str | None = str(transaction_id)
        elif action == "TransactionEvent" and payload.get("eventType") == "Ended":
            key = _str(_dict(payload.get("transactionInfo")).get("transactionId"))
        else:
            return
        if key is not None and self._running.pop(key, None) is not None:
            self._meter_changed()

    async def on_charger_call(
        self, action: str, payload: dict[str, Any], transaction_id: int | None
    ) -> None:
        """Record a transaction message before it is forwarded (so before it is answered).

        ``transaction_id`` is the charger-side OCPP 1.6 id (None in 2.x, where it is in the
        payload).
        """
        now = self.clock.time()
        if action == "TransactionEvent":
            await self._transaction_event(payload, now)
        elif transaction_id is None:
            return
        elif action == "StartTransaction":
            await self._start(
                str(transaction_id),
                connector_id=_int(payload.get("connectorId")),
                evse_id=None,
                id_tag=_str(payload.get("idTag")),
                meter_start_wh=_number(payload.get("meterStart")),
                at=parse_timestamp(payload.get("timestamp"), now),
                remote_start_id=None,
            )
        elif action == "MeterValues":
            await self._samples(str(transaction_id), payload.get("meterValue"), now)
        elif action == "StopTransaction":
            key = str(transaction_id)
            await self._samples(key, payload.get("transactionData"), now)
            await self._stop(
                key,
                at=parse_timestamp(payload.get("timestamp"), now),
                meter_stop_wh=_number(payload.get("meterStop")),
                reason=_str(payload.get("reason")) or "Local",
            )

    async def _transaction_event(self, payload: dict[str, Any], now: float) -> None:
        info = _dict(payload.get("transactionInfo"))
        key = _str(info.get("transactionId"))
        if key is None:
            return
        at = parse_timestamp(payload.get("timestamp"), now)
        if key not in self._sessions or payload.get("eventType") == "Started":
            # A charger that was offline may report Updated or Ended first: start it then.
            evse = _dict(payload.get("evse"))
            id_token = _dict(payload.get("idToken"))
            await self._start(
                key,
                connector_id=_int(evse.get("connectorId")),
                evse_id=_int(evse.get("id")),
                id_tag=_str(id_token.get("idToken")),
                meter_start_wh=None,
                at=at,
                remote_start_id=_int(info.get("remoteStartId")),
            )
        await self._samples(key, payload.get("meterValue"), now)
        if payload.get("eventType") == "Ended":
            await self._stop(key, at=at, meter_stop_wh=None, reason=_str(info.get("stoppedReason")))

    async def _start(
        self,
        key: str,
        *,
        connector_id: int | None,
        evse_id: int | None,
        id_tag: str | None,
        meter_start_wh: float | None,
        at: float,
        remote_start_id: int | None,
    ) -> None:
        where = evse_id if evse_id is not None else connector_id
        running = self._running.get(key)
        if running is None:  # not noted at once (note_start): known in memory first
            running = self._begin(key, where, id_tag, remote_start_id, at, meter_start_wh)
        session_id = await self.store.session_started(
            self.id,
            transaction_id=key,
            connector_id=connector_id,
            evse_id=evse_id,
            id_tag=id_tag,
            meter_start_wh=meter_start_wh,
            started_at=at,
            owner=running.owner,
        )
        self._remember(key, session_id)

    def _begin(
        self,
        key: str,
        where: int | None,
        id_tag: str | None,
        remote_start_id: int | None,
        at: float,
        meter_start_wh: float | None,
    ) -> RunningSession:
        # A store that fails must not hide a running session: it is known in memory first.
        claim = self._claim(where, id_tag, remote_start_id)
        running = RunningSession(key, where, claim.backend_id if claim else None)
        self._running[key] = running
        self.live[key] = LiveMeter(at, meter_start_wh)
        if claim is None:
            self._unowned.add(key)
        self._meter_changed()
        return running

    async def _samples(self, key: str, meter_values: Any, now: float) -> None:
        session_id = self._sessions.get(key)
        samples = meter_samples(meter_values, now)
        if session_id is not None and samples:
            await self.store.session_add_samples(session_id, samples)
        live = self.live.get(key)
        if live is not None and samples:
            live.update(samples)
            self._meter_changed()

    async def _stop(
        self, key: str, *, at: float, meter_stop_wh: float | None, reason: str | None
    ) -> None:
        self._running.pop(key, None)
        if self.live.pop(key, None) is not None:
            self._meter_changed()
        session_id = self._sessions.get(key)
        if session_id is None:
            _LOGGER.warning("%s: stop of transaction %s, which was never recorded", self.id, key)
            return
        session = await self.store.session_stopped(
            session_id,
            stopped_at=at,
            meter_stop_wh=meter_stop_wh,
            stop_reason=reason,
            tariffs=self.tariffs,
        )
        self._unowned.discard(key)
        revenue = f", revenue {session.revenue} {session.currency}" if session.revenue else ""
        _LOGGER.info(
            "%s: session %s ended: %s kWh, owner %s%s",
            self.id,
            key,
            session.energy_kwh,
            session.owner,
            revenue,
        )

    def _meter_changed(self) -> None:
        if self._on_meter is not None:
            self._on_meter()

    def _remember(self, key: str, session_id: int) -> None:
        self._sessions[key] = session_id
        self._sessions.move_to_end(key)
        while len(self._sessions) > _RECENT:
            old, _ = self._sessions.popitem(last=False)
            self._unowned.discard(old)

    # -- who answered, who asked -----------------------------------------------------------

    async def on_start_answered(self, transaction_key: str | None, answered_by: str) -> None:
        """The charger's start was answered by ``answered_by`` (a backend id, or ``local``).

        A session that no remote start claimed belongs to whoever answered its start.
        """
        if transaction_key is None or transaction_key not in self._unowned:
            return
        self._unowned.discard(transaction_key)
        running = self._running.get(transaction_key)
        if running is not None:
            self._running[transaction_key] = RunningSession(
                running.transaction, running.connector, answered_by
            )
        session_id = self._sessions.get(transaction_key)
        if session_id is not None:
            await self.store.session_set_owner(session_id, answered_by)

    def claim_start(self, backend_id: str, action: str, payload: dict[str, Any]) -> RemoteStart:
        """A backend's remote start passed the rules: it claims the session it will begin.

        The claim holds the connector (1.6 ``connectorId``, 2.x ``evseId``) against other
        backends' starts until the session begins, the charger refuses the start
        (:meth:`release`), or ``claim_window_s`` passes.
        """
        id_token = payload.get("idToken")
        claim = RemoteStart(
            backend_id=backend_id,
            connector_id=_int(payload.get("connectorId", payload.get("evseId"))),
            id_tag=_str(payload.get("idTag"))
            or (_str(id_token.get("idToken")) if isinstance(id_token, dict) else None),
            remote_start_id=_int(payload.get("remoteStartId")),
            at=self.clock.monotonic(),
        )
        self._claims.append(claim)
        return claim

    def release(self, claim: RemoteStart) -> None:
        """The charger did not accept the remote start: its claim goes."""
        if claim in self._claims:
            self._claims.remove(claim)

    def claims(self) -> dict[int | None, str]:
        """Connector (None: any) -> backend, for the remote starts still waiting to begin."""
        return {claim.connector_id: claim.backend_id for claim in self._live_claims()}

    def _live_claims(self) -> list[RemoteStart]:
        horizon = self.clock.monotonic() - self.claim_window_s
        self._claims = [c for c in self._claims if c.at >= horizon]
        return self._claims

    def _claim(
        self, connector_id: int | None, id_tag: str | None, remote_start_id: int | None
    ) -> RemoteStart | None:
        for claim in self._live_claims():
            if remote_start_id is not None and claim.remote_start_id == remote_start_id:
                break
            if (
                remote_start_id is None
                and claim.id_tag == id_tag
                and claim.connector_id in (None, connector_id)
            ):
                break
        else:
            return None
        self.release(claim)
        return claim

    async def on_backend_transaction(
        self, transaction_key: str, backend_id: str, backend_transaction_id: int
    ) -> None:
        """Record the id a backend gave the charger's transaction (OCPP 1.6 §4.8)."""
        session_id = self._sessions.get(transaction_key)
        if session_id is not None:
            await self.store.session_set_backend_transaction(
                session_id, backend_id, str(backend_transaction_id)
            )


def _int(value: Any) -> int | None:
    # Only what SQLite can store (a 64-bit integer): a charger may send any JSON number.
    return value if type(value) is int and -(2**63) <= value < 2**63 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if type(value) is float:
        return value
    # float() of an int past about 1e308 raises OverflowError: such a reading is no reading.
    return float(value) if type(value) is int and -(2**63) <= value < 2**63 else None
