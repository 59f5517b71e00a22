"""A scriptable simulated charger (charge point) speaking OCPP 1.6, 2.0.1 or 2.1 over WebSocket.

:class:`SimulatedCharger` is the version-neutral charger: the charger peer of the project's
integration tests, where every charger-initiated message is a separate awaitable step
(:meth:`SimulatedCharger.boot`, :meth:`SimulatedCharger.status`, ...) and every command the
CSMS side sends is answered like a well-behaved charger would and recorded in
:attr:`SimulatedCharger.received` (see :meth:`SimulatedCharger.wait_for_command`). It speaks
through a peer built on the ``ocpp`` library's ``ChargePoint`` classes and a ``websockets``
client: :mod:`ocpp_proxy.simulator.v16` or :mod:`ocpp_proxy.simulator.v2`.
``ocpp-proxy simulate-charger`` (:mod:`ocpp_proxy.simulator.run`) plays whole sessions with it.

Units: energy in Wh, power in W, durations in seconds, as in the OCPP measurands
``Energy.Active.Import.Register`` and ``Power.Active.Import``.

The 2.0.1 side models one EVSE (``evseId`` 1); a 1.6 ``connectorId`` *n* is sent as EVSE 1,
connector *n*.  OCPP 2.1 reuses the 2.0.1 message flow through ``ocpp.v21``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from ocpp_proxy.simulator.common import (
    DEFAULT_POWER_W,
    ENERGY,
    POWER,
    SUBPROTOCOLS,
    SUPPORTED_VERSIONS,
    PeerBase,
    SimulationError,
    authorization_status,
)
from ocpp_proxy.simulator.v2 import PEER_21, PEER_201
from ocpp_proxy.simulator.v16 import PEER_16

_LOGGER = logging.getLogger("ocpp_proxy.simulator")

#: The peer that speaks each OCPP version on the wire.
PEERS: dict[str, type[PeerBase]] = {"1.6": PEER_16, "2.0.1": PEER_201, "2.1": PEER_21}


class SimulatedCharger:
    """A simulated home charger connected to one CSMS (or to the proxy's charger endpoint).

    Create it with :meth:`connect`; use it as an async context manager or call :meth:`close`.
    The ``ocpp`` receive loop runs in a background task; charger-initiated messages are the
    awaitable steps below, each of which logs one line and returns the decoded answer (an
    ``ocpp.v16.call_result`` / ``ocpp.v201.call_result`` dataclass with snake_case fields).
    A CALLERROR answer raises the matching ``ocpp.exceptions.OCPPError``; losing the connection
    while waiting raises :class:`ConnectionError`.

    State a test can read:

    * ``received`` - every CSMS command as ``(action, camelCase payload as received)``,
      appended once its handler ran, before its answer is sent;
    * ``transaction_id`` - the ongoing transaction (``int`` in 1.6, ``str`` from 2.0.1) or None,
      ``transaction_connector_id``, ``transaction_id_tag``;
    * ``energy_wh`` - the meter's Energy.Active.Import.Register (Wh); ``power_w`` - the power
      (W) of the last meter sample; ``phases`` (settable, default 1) - with 3, power is
      reported per phase (``L1``-``L3``, a third each) instead of as one total;
    * ``connector_status`` - last status sent per connector (1.6 names);
    * ``configuration`` (1.6 GetConfiguration keys) / ``variables`` (2.0.1 ``(component,
      variable) -> value``);
    * ``charging_profiles`` - profiles held, ``(chargingProfilePurpose, stackLevel) -> profile
      as received (camelCase)``; ``charging_profile_targets`` maps the same key to the
      connector (1.6) / EVSE (2.0.1) id it was set for;
    * ``reservations`` - ``reservationId -> ReserveNow payload`` (1.6);
    * ``errors`` - exceptions raised by background follow-ups (e.g. a failed remote start).

    It sends nothing on its own (no periodic Heartbeat or MeterValues): only the steps it is
    told to take and the follow-ups of commands it accepted, so tests stay deterministic.
    """

    vendor = "ocpp-proxy"
    model = "SimulatedCharger"
    serial_number: str | None = "SIM-0001"
    firmware_version: str | None = "0.1.0"

    def __init__(
        self,
        connection: Any,
        charge_point_id: str,
        version: str,
        *,
        url: str = "",
        log: Callable[[str], None] | None = None,
        response_timeout: float = 30.0,
    ) -> None:
        """Wrap an open WebSocket ``connection``; prefer :meth:`connect`, which opens it."""
        if version not in PEERS:
            raise ValueError(
                f"unsupported OCPP version {version!r}; use one of {', '.join(SUPPORTED_VERSIONS)}"
            )
        self.url = url
        self.charge_point_id = charge_point_id
        self.version = version
        self.connection = connection
        self.subprotocol: str | None = getattr(connection, "subprotocol", None)
        self._log_fn = log or _LOGGER.info

        self.received: list[tuple[str, dict[str, Any]]] = []
        self._consumed: set[int] = set()
        self._received_changed = asyncio.Condition()

        self.transaction_id: int | str | None = None
        self.transaction_connector_id: int | None = None
        self.transaction_id_tag: str | None = None
        self.transaction_ids: list[int | str] = []
        self.energy_wh: float = 0
        self.power_w: float = 0
        self.phases = 1
        self.connector_status: dict[int, str] = {1: "Available"}
        self.configuration: dict[str, str] = {
            "HeartbeatInterval": "300",
            "MeterValueSampleInterval": "60",
            "MeterValuesSampledData": f"{ENERGY},{POWER}",
            "AuthorizeRemoteTxRequests": "false",
            "ConnectionTimeOut": "60",
            "LocalAuthorizeOffline": "true",
            "NumberOfConnectors": "1",
            "ChargeProfileMaxStackLevel": "10",
            "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
            "SupportedFeatureProfiles": "Core,SmartCharging,RemoteTrigger,Reservation",
        }
        self.readonly_configuration: frozenset[str] = frozenset(
            {
                "NumberOfConnectors",
                "ChargeProfileMaxStackLevel",
                "ChargingScheduleAllowedChargingRateUnit",
                "SupportedFeatureProfiles",
            }
        )
        self.variables: dict[tuple[str, str], str] = {
            ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
            ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
            ("SampledDataCtrlr", "TxUpdatedMeasurands"): f"{ENERGY},{POWER}",
            ("AuthCtrlr", "AuthorizeRemoteStart"): "false",
            ("SmartChargingCtrlr", "Enabled"): "true",
            ("SmartChargingCtrlr", "ProfileStackLevel"): "10",
        }
        self.readonly_variables: frozenset[tuple[str, str]] = frozenset(
            {("SmartChargingCtrlr", "ProfileStackLevel")}
        )
        self.charging_profiles: dict[tuple[str, int], dict[str, Any]] = {}
        self.charging_profile_targets: dict[tuple[str, int], int] = {}
        self.reservations: dict[int, dict[str, Any]] = {}
        self.errors: list[BaseException] = []
        self._unraised: list[BaseException] = []

        self._starting = False
        self._stopping = False
        self._seq_nos: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        peer_cls = PEERS[version]
        self._peer: Any = peer_cls(
            charge_point_id, connection, sim=self, response_timeout=response_timeout
        )
        self._runner = asyncio.create_task(self._receive_loop(), name=f"sim-{charge_point_id}")

    # ---- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        charge_point_id: str,
        version: str = "1.6",
        *,
        subprotocols: list[str] | None = None,
        log: Callable[[str], None] | None = None,
        response_timeout: float = 30.0,
        open_timeout: float = 10.0,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SimulatedCharger:
        """Open the WebSocket to ``url`` (used as is) and start answering the CSMS.

        ``version`` is ``"1.6"``, ``"2.0.1"`` or ``"2.1"``.  ``subprotocols=None`` offers the
        version's subprotocol (``ocpp1.6`` / ``ocpp2.0.1`` / ``ocpp2.1``, OCPP-J §3.1.2); ``[]``
        offers none.  ``log`` receives one line per exchange (default: the
        ``ocpp_proxy.simulator`` logger).  ``response_timeout`` (s) bounds the wait for each
        answer; ``open_timeout`` (s) bounds the opening handshake.  ``password`` sends HTTP
        Basic with the charge point id as username (security profiles 1 and 2, OCPP 2.0.1
        part 2 A00); ``ssl_context`` is the TLS context for ``wss://`` (profile 3: with a
        client certificate loaded).

        Raises ``ValueError`` for an unsupported version, ``OSError`` / ``TimeoutError`` /
        ``websockets.exceptions.InvalidHandshake`` / ``InvalidURI`` when the connection fails.
        """
        if version not in PEERS:
            raise ValueError(
                f"unsupported OCPP version {version!r}; use one of {', '.join(SUPPORTED_VERSIONS)}"
            )
        offered = [SUBPROTOCOLS[version]] if subprotocols is None else list(subprotocols)
        headers: dict[str, str] = {}
        if password is not None:
            token = base64.b64encode(f"{charge_point_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        # websockets takes ssl=None for "plain TCP" even on wss://: pass it only when given.
        tls: dict[str, Any] = {"ssl": ssl_context} if ssl_context is not None else {}
        connection = await websockets.connect(
            url,
            subprotocols=offered or None,
            open_timeout=open_timeout,
            additional_headers=headers or None,
            **tls,
        )
        charger = cls(
            connection,
            charge_point_id,
            version,
            url=url,
            log=log,
            response_timeout=response_timeout,
        )
        charger._log(
            f"connected to {url} as {charge_point_id} (OCPP {version},"
            f" subprotocol {charger.subprotocol or 'none'})"
        )
        return charger

    async def _receive_loop(self) -> None:
        try:
            await self._peer.start()
        except ConnectionClosed:
            pass
        except Exception as exc:  # keep it visible: steps then fail with ConnectionError
            self.errors.append(exc)
            self._log(f"!! receive loop failed: {exc!r}")

    @property
    def connected(self) -> bool:
        """True while the WebSocket receive loop is running."""
        return not self._runner.done()

    async def wait_closed(self, timeout: float = 5.0) -> int | None:  # noqa: ASYNC109
        """Wait until the other side closes the WebSocket; return the close code (e.g. 1000).

        Raises ``TimeoutError`` when it is still open after ``timeout`` s.
        """
        await asyncio.wait_for(asyncio.shield(self._runner), timeout)
        return getattr(self.connection, "close_code", None)

    async def close(self) -> None:
        """Cancel pending follow-ups, close the WebSocket (code 1000) and stop the receive loop."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.connection.close()
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await self._runner

    async def __aenter__(self) -> SimulatedCharger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- charger-initiated steps -------------------------------------------------------------

    async def boot(self, reason: str = "PowerUp") -> Any:
        """Send BootNotification (OCPP 1.6 §4.2; 2.0.1 B01) and return the answer.

        ``reason`` (a 2.0.1 BootReasonEnumType, ignored in 1.6) defaults to ``PowerUp``.
        Returns the ``call_result.BootNotification`` (``status``, ``interval`` in s,
        ``current_time``).
        """
        return await self._peer.boot(reason)

    async def heartbeat(self) -> Any:
        """Send Heartbeat (OCPP 1.6 §4.6; 2.0.1 G02); returns the answer (``current_time``)."""
        return await self._peer.heartbeat()

    async def status(self, connector_id: int, status: str) -> Any:
        """Send StatusNotification for ``connector_id`` (OCPP 1.6 §4.9; 2.0.1 G01).

        ``status`` is a 1.6 ChargePointStatus (``Available``, ``Preparing``, ``Charging``,
        ``SuspendedEV``, ``SuspendedEVSE``, ``Finishing``, ``Reserved``, ``Unavailable``,
        ``Faulted``).  From 2.0.1 on it is sent as EVSE 1 / connector ``connector_id`` with the
        ConnectorStatusEnumType it implies (``Preparing``/``Charging``/... -> ``Occupied``);
        2.0.1 names (``Occupied``) are accepted too.  Raises ``ValueError`` for an unknown
        status.  Returns the (empty) answer.
        """
        res = await self._peer.status(connector_id, status)
        self.connector_status[connector_id] = status
        return res

    async def authorize(self, id_tag: str) -> Any:
        """Send Authorize for ``id_tag`` (OCPP 1.6 §4.1; 2.0.1 C01, as an ISO14443 idToken).

        Returns the answer: ``id_tag_info`` (1.6) / ``id_token_info`` (2.0.1) dict whose
        ``status`` is e.g. ``Accepted``.
        """
        return await self._peer.authorize(id_tag)

    async def start_transaction(
        self, connector_id: int, id_tag: str, meter_start_wh: float | None = None
    ) -> int | str:
        """Start a transaction and return its id.

        1.6: StartTransaction (OCPP 1.6 §4.8) with ``meterStart`` = ``meter_start_wh`` (Wh,
        rounded to an int); returns the ``transactionId`` the CSMS assigned (int).  2.0.1:
        TransactionEvent ``Started`` (2.0.1 E01-E03) with a charger-generated UUID
        ``transactionId``, ``seqNo`` 0 and the register as a ``Transaction.Begin`` sample;
        returns that id (str).  ``meter_start_wh`` defaults to the current ``energy_wh``.
        Sets ``transaction_id``.
        """
        meter = self.energy_wh if meter_start_wh is None else meter_start_wh
        return await self._peer.start_transaction(connector_id, id_tag, meter)

    async def meter_values(
        self, connector_id: int, transaction_id: int | str | None, energy_wh: float, power_w: float
    ) -> Any:
        """Send a meter sample: ``energy_wh`` (Wh register) and ``power_w`` (W).

        1.6: MeterValues (OCPP 1.6 §4.7) with ``Energy.Active.Import.Register`` (unit Wh) and
        ``Power.Active.Import`` (unit W), context ``Sample.Periodic``.  2.0.1: TransactionEvent
        ``Updated`` with trigger ``MeterValuePeriodic`` (2.0.1 E02/J02) carrying the same
        measurands, or a MeterValuesRequest (J01) when ``transaction_id`` is None.
        Updates ``energy_wh`` / ``power_w``; returns the answer.
        """
        self.energy_wh, self.power_w = energy_wh, power_w
        return await self._peer.meter_values(connector_id, transaction_id, energy_wh, power_w)

    async def stop_transaction(
        self, transaction_id: int | str, meter_stop_wh: float | None = None, reason: str = "Local"
    ) -> Any:
        """Stop transaction ``transaction_id`` with the register at ``meter_stop_wh`` (Wh).

        1.6: StopTransaction (OCPP 1.6 §4.10) with ``reason`` (1.6 Reason type, e.g. ``Local``,
        ``Remote``).  2.0.1: TransactionEvent ``Ended`` (2.0.1 E06) with ``stoppedReason``
        (1.6 names are translated, e.g. ``HardReset`` -> ``ImmediateReset``), a trigger reason
        derived from it and a ``Transaction.End`` register sample.  ``meter_stop_wh`` defaults
        to ``energy_wh``.  Clears ``transaction_id`` and the TxProfiles held; returns the answer.
        """
        meter = self.energy_wh if meter_stop_wh is None else meter_stop_wh
        self.energy_wh = meter
        return await self._peer.stop_transaction(transaction_id, meter, reason)

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None
    ) -> Any:
        """Send DataTransfer (OCPP 1.6 §4.3; 2.0.1 P01) and return the answer.

        ``data`` is a string in 1.6 (any JSON value from 2.0.1).  Returns the
        ``call_result.DataTransfer`` (``status`` e.g. ``Accepted`` / ``UnknownVendorId``,
        ``data``).
        """
        return await self._peer.data_transfer(vendor_id, message_id, data)

    async def run_session(
        self,
        transactions: int = 1,
        meter_samples: int = 3,
        *,
        connector_id: int = 1,
        id_tag: str = "SIMTAG01",
        power_w: float = DEFAULT_POWER_W,
    ) -> list[int | str]:
        """Play a whole charging session and return the transaction ids it created.

        Boot (OCPP 1.6 §4.2 / 2.0.1 B01), Heartbeat, StatusNotification Available; then per
        transaction: Authorize ``id_tag``, StatusNotification Preparing, start the transaction,
        StatusNotification Charging, ``meter_samples`` meter samples at ``power_w`` (W), each
        adding ``power_w`` x MeterValueSampleInterval (s) / 3600 Wh to the register (simulated
        time: nothing sleeps), stop the transaction (reason Local), StatusNotification
        Available.  Raises :class:`SimulationError` when the boot or the id tag is not accepted.
        """
        boot = await self.boot()
        if boot.status != "Accepted":
            raise SimulationError(f"BootNotification answered {boot.status}, not Accepted")
        await self.heartbeat()
        await self.status(connector_id, "Available")
        interval_s = float(self.configuration.get("MeterValueSampleInterval", "60"))
        created: list[int | str] = []
        for _ in range(transactions):
            status = authorization_status(await self.authorize(id_tag))
            if status != "Accepted":
                raise SimulationError(f"Authorize {id_tag} answered {status}")
            await self.status(connector_id, "Preparing")
            tx = await self.start_transaction(connector_id, id_tag, self.energy_wh)
            await self.status(connector_id, "Charging")
            for _sample in range(meter_samples):
                energy = round(self.energy_wh + power_w * interval_s / 3600)
                await self.meter_values(connector_id, tx, energy, power_w)
            self.power_w = 0
            await self.stop_transaction(tx, self.energy_wh, reason="Local")
            await self.status(connector_id, "Available")
            created.append(tx)
        return created

    # ---- observing CSMS commands ---------------------------------------------------------------

    async def wait_for_command(self, action: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait for the first not-yet-consumed CSMS command ``action``; return its payload.

        The payload is camelCase, as received.  The command has already been answered (and
        its effect, e.g. a held charging profile, applied) when this returns; follow-up
        messages it triggers may still be in flight (see :meth:`wait_background`).  Each
        received command is returned once.  Raises ``TimeoutError`` after ``timeout`` s.
        """

        def first_unconsumed() -> int | None:
            for index, (name, _payload) in enumerate(self.received):
                if name == action and index not in self._consumed:
                    return index
            return None

        async with self._received_changed:
            try:
                async with asyncio.timeout(timeout):
                    await self._received_changed.wait_for(lambda: first_unconsumed() is not None)
            except TimeoutError:
                seen = [name for name, _payload in self.received]
                raise TimeoutError(
                    f"{self.charge_point_id}: no {action} received within {timeout}s"
                    f" (received so far: {seen})"
                ) from None
            index = first_unconsumed()
            assert index is not None
            self._consumed.add(index)
            return self.received[index][1]

    async def wait_background(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the follow-ups of answered commands are done; re-raise a failure.

        Follow-ups are the messages a command sets off after its answer, e.g. the
        StartTransaction after an accepted RemoteStartTransaction.  The first follow-up that
        failed since the previous call is re-raised (all of them stay in ``errors``).  Raises
        ``TimeoutError`` when they are still running after ``timeout`` s.
        """
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))
        if self._unraised:
            first = self._unraised[0]
            self._unraised.clear()
            raise first

    # ---- internals used by the peers -----------------------------------------------------------

    def _log(self, line: str) -> None:
        self._log_fn(f"[{self.charge_point_id}] {line}")

    async def _notify_received(self) -> None:
        async with self._received_changed:
            self._received_changed.notify_all()

    def _spawn(self, label: str, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.charge_point_id} {label}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.errors.append(exc)
            self._unraised.append(exc)
            self._log(f"!! {task.get_name()} follow-up failed: {exc!r}")

    async def _call(self, payload: Any) -> Any:
        """Send one CALL and return the decoded CALLRESULT; fail fast if the socket closes."""
        action = type(payload).__name__
        if self._runner.done():
            raise ConnectionError(
                f"{self.charge_point_id}: connection closed; cannot send {action}"
            )
        request = asyncio.ensure_future(self._peer.call(payload, suppress=False))
        try:
            await asyncio.wait({request, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
        if request.cancelled():
            raise ConnectionError(
                f"{self.charge_point_id}: connection closed while waiting for the answer to"
                f" {action}"
            )
        try:
            return request.result()
        except ConnectionClosed as exc:
            raise ConnectionError(
                f"{self.charge_point_id}: connection closed; cannot send {action}"
            ) from exc

    def _next_seq_no(self, transaction_id: str) -> int:
        seq = self._seq_nos.get(transaction_id, 0)
        self._seq_nos[transaction_id] = seq + 1
        return seq

    def _transaction_started(
        self, transaction_id: int | str, connector_id: int, id_tag: str, meter_start_wh: float
    ) -> None:
        self.transaction_id = transaction_id
        self.transaction_connector_id = connector_id
        self.transaction_id_tag = id_tag
        self.transaction_ids.append(transaction_id)
        self.energy_wh = meter_start_wh
        self._stopping = False

    def _transaction_stopped(self, transaction_id: int | str) -> None:
        if transaction_id == self.transaction_id:
            self.transaction_id = None
            self.transaction_connector_id = None
            self.transaction_id_tag = None
            # A TxProfile lives only as long as its transaction (OCPP 1.6 §3.13; 2.0.1 K01).
            for key in [k for k in self.charging_profiles if k[0] == "TxProfile"]:
                del self.charging_profiles[key]
                del self.charging_profile_targets[key]
        self._stopping = False
        self._seq_nos.pop(str(transaction_id), None)

    def _take_reservation(self, connector_id: int, id_tag: str) -> int | None:
        for reservation_id, reservation in list(self.reservations.items()):
            if (
                reservation.get("connectorId") in (0, connector_id)
                and reservation.get("idTag") == id_tag
            ):
                del self.reservations[reservation_id]
                return reservation_id
        return None

    def _hold_profile(self, profile: dict[str, Any], target: int) -> None:
        profile_id = profile.get("chargingProfileId", profile.get("id"))
        for key, held in list(self.charging_profiles.items()):
            if held.get("chargingProfileId", held.get("id")) == profile_id:
                del self.charging_profiles[key]
                del self.charging_profile_targets[key]
        key = (profile["chargingProfilePurpose"], profile["stackLevel"])
        self.charging_profiles[key] = profile
        self.charging_profile_targets[key] = target

    def _clear_profiles(
        self,
        profile_id: int | None,
        target: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> bool:
        cleared = False
        for key, held in list(self.charging_profiles.items()):
            if profile_id is not None:
                match = held.get("chargingProfileId", held.get("id")) == profile_id
            else:
                match = (
                    (target is None or self.charging_profile_targets[key] == target)
                    and (purpose is None or key[0] == purpose)
                    and (stack_level is None or key[1] == stack_level)
                )
            if match:
                del self.charging_profiles[key]
                del self.charging_profile_targets[key]
                cleared = True
        return cleared

    def _composite_schedule(self, duration: int, unit: str | None) -> dict[str, Any]:
        """The ``chargingSchedule`` of a GetCompositeSchedule answer (OCPP 1.6 §5.7).

        It is the highest-stack profile of the most specific purpose held (TxProfile during a
        transaction, else TxDefaultProfile, else ChargePointMaxProfile), or a flat 32 A /
        22000 W limit when none is held.
        """
        purposes = ["TxDefaultProfile", "ChargePointMaxProfile"]
        if self.transaction_id is not None:
            purposes.insert(0, "TxProfile")
        for purpose in purposes:
            levels = sorted(level for p, level in self.charging_profiles if p == purpose)
            if levels:
                schedule = self.charging_profiles[(purpose, levels[-1])]["chargingSchedule"]
                return {
                    "duration": duration,
                    "chargingRateUnit": schedule["chargingRateUnit"],
                    "chargingSchedulePeriod": schedule["chargingSchedulePeriod"],
                }
        rate_unit = unit or "A"
        return {
            "duration": duration,
            "chargingRateUnit": rate_unit,
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 32.0 if rate_unit == "A" else 22000.0}
            ],
        }

    async def _set_statuses(self, connectors: list[int], status: str) -> None:
        for connector in connectors:
            await self.status(connector, status)

    async def _remote_start(
        self,
        connector_id: int,
        id_tag: str,
        *,
        id_token: dict[str, Any] | None = None,
        remote_start_id: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> None:
        """Start a transaction after an accepted remote start.

        RemoteStartTransaction (OCPP 1.6 §5.11) / RequestStartTransaction (2.0.1 F01):
        Authorize first when AuthorizeRemoteTxRequests (1.6) / AuthCtrlr.AuthorizeRemoteStart
        (2.0.1) is "true" (and give up unless Accepted), then Preparing, start the
        transaction, hold its TxProfile, Charging.
        """
        try:
            if self._authorizes_remote_starts():
                answer = await self._peer.authorize(id_tag, id_token=id_token)
                if authorization_status(answer) != "Accepted":
                    return
            await self.status(connector_id, "Preparing")
            await self._peer.start_transaction(
                connector_id,
                id_tag,
                self.energy_wh,
                remote_start_id=remote_start_id,
                id_token=id_token,
            )
        finally:
            self._starting = False
        if profile is not None:
            held = dict(profile)
            if self.version == "1.6":
                held.setdefault("transactionId", self.transaction_id)
            self._hold_profile(held, connector_id if self.version == "1.6" else 1)
        await self.status(connector_id, "Charging")

    def _authorizes_remote_starts(self) -> bool:
        if self.version == "1.6":
            flag = self.configuration.get("AuthorizeRemoteTxRequests", "false")
        else:
            flag = self.variables.get(("AuthCtrlr", "AuthorizeRemoteStart"), "false")
        return flag.strip().lower() == "true"

    async def _remote_stop(self, transaction_id: int | str, reason: str) -> None:
        """Stop a transaction after an accepted remote stop or unlock.

        RemoteStopTransaction (OCPP 1.6 §5.12) / RequestStopTransaction (2.0.1 F03) /
        UnlockConnector (1.6 §5.18): stop it, then report the connector Available.
        """
        connector = self.transaction_connector_id or 1
        try:
            await self.stop_transaction(transaction_id, self.energy_wh, reason=reason)
        finally:
            self._stopping = False
        await self.status(connector, "Available")

    async def _reboot(self, stop_reason: str) -> None:
        """Simulate the reboot after an accepted Reset (OCPP 1.6 §5.14; 2.0.1 B11/B12).

        End the transaction, boot again on the same connection (reason RemoteReset) and
        report every connector Available.
        """
        if self.transaction_id is not None:
            await self.stop_transaction(self.transaction_id, self.energy_wh, reason=stop_reason)
        await self.boot(reason="RemoteReset")
        for connector in sorted(self.connector_status):
            await self.status(connector, "Available")
