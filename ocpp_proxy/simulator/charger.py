"""A scriptable simulated charger (charge point) speaking OCPP 1.6, 2.0.1 or 2.1 over WebSocket.

It is built on the ``ocpp`` library's ``ChargePoint`` classes and a ``websockets`` client.  It
serves two purposes:

* ``ocpp-proxy simulate`` (see :func:`add_arguments` / :func:`main_async`): play a whole
  charging session against the proxy's charger endpoint and print one line per exchange;
* the charger peer of the project's integration tests: every charger-initiated message is a
  separate awaitable step (:meth:`SimulatedCharger.boot`, :meth:`SimulatedCharger.status`, ...),
  and every command the CSMS side sends is answered like a well-behaved charger would and
  recorded in :attr:`SimulatedCharger.received` (see :meth:`SimulatedCharger.wait_for_command`).

Units: energy in Wh, power in W, durations in seconds, as in the OCPP measurands
``Energy.Active.Import.Register`` and ``Power.Active.Import``.

The 2.0.1 side models one EVSE (``evseId`` 1); a 1.6 ``connectorId`` *n* is sent as EVSE 1,
connector *n*.  OCPP 2.1 reuses the 2.0.1 message flow through ``ocpp.v21``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

import websockets
from ocpp import v16, v21, v201
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.exceptions import NotSupportedError, OCPPError
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import ChargePointStatus
from ocpp.v21.enums import Action as Action21
from ocpp.v201.enums import Action as Action201
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

_LOGGER = logging.getLogger("ocpp_proxy.simulator")

#: WebSocket subprotocol offered for each supported OCPP version (OCPP-J 1.6 §3.1.2,
#: OCPP 2.0.1 part 4 §3.1.2).
SUBPROTOCOLS: dict[str, str] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}

#: The OCPP versions :meth:`SimulatedCharger.connect` accepts.
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(SUBPROTOCOLS)

#: Charging power (W) the simulated EV draws in :meth:`SimulatedCharger.run_session`.
DEFAULT_POWER_W = 7400

_ENERGY = "Energy.Active.Import.Register"
_POWER = "Power.Active.Import"

# OCPP 1.6 ChargePointStatus (type list, §7) -> OCPP 2.0.1 ConnectorStatusEnumType (2.0.1 G01).
_STATUS_201: dict[str, str] = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
    "Occupied": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}
_STATUS_16 = frozenset(s.value for s in ChargePointStatus)

# StopTransaction reasons (OCPP 1.6 Reason type, §7) that 2.0.1 (ReasonEnumType) names differently.
_REASON_201 = {"HardReset": "ImmediateReset", "SoftReset": "Reboot", "UnlockCommand": "Other"}
_REASON_16 = {"ImmediateReset": "HardReset"}
# TransactionEvent Ended triggerReason for a stop reason (OCPP 2.0.1 E06).
_STOP_TRIGGER_201 = {
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
    "EVDisconnected": "EVDeparted",
    "DeAuthorized": "Deauthorized",
    "HardReset": "ResetCommand",
    "SoftReset": "ResetCommand",
    "ImmediateReset": "ResetCommand",
    "Reboot": "ResetCommand",
    "UnlockCommand": "UnlockCommand",
    "EnergyLimitReached": "EnergyLimitReached",
    "TimeLimitReached": "TimeLimitReached",
    "StoppedByEV": "EVDeparted",
}


class SimulationError(RuntimeError):
    """The CSMS answered in a way that stops the simulated session (e.g. a rejected boot)."""


def _now() -> str:
    """Current UTC time as an OCPP ``dateTime`` (RFC 3339 with ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact(data: Any, limit: int = 200) -> str:
    """One-line JSON rendering of ``data`` for log lines, cut at ``limit`` characters."""
    text = json.dumps(data, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wire(result: Any) -> dict[str, Any]:
    """A handler's ``call_result`` dataclass as the camelCase payload that goes on the wire."""
    return snake_to_camel_case(remove_nones(serialize_as_dict(result)))


def charger_url(base: str, charge_point_id: str) -> str:
    """The WebSocket URL a charger ``charge_point_id`` connects to, given an endpoint URL.

    ``base`` is the proxy's (or a CSMS's) charger endpoint such as ``ws://localhost:9000/charger``;
    per OCPP-J 1.6 §3.1.1 / 2.0.1 part 4 §3.1.1 the charger appends ``/<id>`` to it.  The URL is
    returned unchanged when its last path segment already is the (URL-encoded) id.
    """
    trimmed = base.rstrip("/")
    last = urlsplit(trimmed).path.rsplit("/", 1)[-1]
    if last and unquote(last) == charge_point_id:
        return trimmed
    return f"{trimmed}/{quote(charge_point_id, safe='')}"


# --------------------------------------------------------------------------------------------
# The wire side: ocpp ChargePoint subclasses that answer CSMS commands and send the steps.
# --------------------------------------------------------------------------------------------


class _PeerBase:
    """Behaviour shared by the per-version peers (mixed in before ``ocpp``'s ``ChargePoint``).

    Each received CALL is appended to the owning :class:`SimulatedCharger`'s ``received``
    right after its handler ran (so before the CSMS has the answer, and with the handler's
    effect applied); waiters are woken once the answer is sent.  The follow-up actions a
    handler queued with :meth:`then` (e.g. the StartTransaction after an accepted
    RemoteStartTransaction) start only after the CALLRESULT has been sent, so the CSMS always
    sees the answer first.
    """

    sim: SimulatedCharger
    route_map: dict[str, dict[str, Any]]
    _ocpp_version: str
    #: Every action the OCPP version defines.
    known_actions: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, sim: SimulatedCharger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sim = sim
        self.payload: dict[str, Any] = {}
        self._action = ""
        self._recorded = True
        self._followups: list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]] = []
        self._last_reply: Any = None
        for handlers in self.route_map.values():
            if "_on_action" in handlers:
                handlers["_on_action"] = self._remember_reply(handlers["_on_action"])

    def _remember_reply(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(**kwargs: Any) -> Any:
            try:
                self._last_reply = handler(**kwargs)
            finally:
                self._record_current()
            return self._last_reply

        return wrapper

    def then(self, label: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Queue ``factory()`` to run as a background task once the current CALL is answered."""
        self._followups.append((label, factory))

    def _record_current(self) -> None:
        if not self._recorded:
            self._recorded = True
            self.sim.received.append((self._action, self.payload))

    async def _handle_call(self, msg: Any) -> Any:
        # Keep the payload exactly as received: for some 1.6 actions the library's schema
        # validation swaps msg.payload for a copy with Decimal numbers.
        payload = msg.payload
        self.payload = payload
        self._action = msg.action
        self._recorded = False
        self._followups = []
        self._last_reply = None
        if msg.action not in self.route_map:
            # Answered here rather than by the library, which logs a traceback for it (and
            # sends no answer at all for 2.1): NotImplemented for an action of this OCPP
            # version, NotSupported for one it does not define (OCPP-J 1.6 §4.2.3).
            error: OCPPError
            if msg.action in self.known_actions:
                error = OcppNotImplementedError(details={"cause": f"{msg.action} not handled"})
            else:
                error = NotSupportedError(details={"cause": f"{msg.action} is not an action"})
            self.sim._log(f"<- {msg.action} {_compact(payload)} -> CALLERROR {error.code}")
            self._record_current()
            try:
                await self._send(msg.create_call_error(error).to_json())  # type: ignore[attr-defined]
            finally:
                await self.sim._notify_received()
            return None
        try:
            result = await super()._handle_call(msg)  # type: ignore[misc]
        except OCPPError as exc:
            # E.g. a request that fails schema validation; route_message answers CALLERROR.
            self.sim._log(f"<- {msg.action} {_compact(payload)} -> CALLERROR {exc.code}")
            self._record_current()
            await self.sim._notify_received()
            raise
        finally:
            followups, self._followups = self._followups, []
        self._record_current()
        await self.sim._notify_received()
        reply = _wire(self._last_reply) if self._last_reply is not None else "CALLERROR"
        self.sim._log(f"<- {msg.action} {_compact(payload)} -> {_compact(reply)}")
        if self._last_reply is not None:
            for label, factory in followups:
                self.sim._spawn(label, factory())
        return result


class _Peer16(_PeerBase, v16.ChargePoint):
    """OCPP 1.6 (JSON) charge point: the steps of OCPP 1.6 §4 and the handlers of §5."""

    known_actions = frozenset(a.value for a in Action16)

    # ---- charger-initiated steps (OCPP 1.6 §4) -----------------------------------------

    async def boot(self, reason: str) -> Any:
        sim = self.sim
        res = await sim._call(
            call16.BootNotification(
                charge_point_vendor=sim.vendor,
                charge_point_model=sim.model,
                charge_point_serial_number=sim.serial_number,
                firmware_version=sim.firmware_version,
            )
        )
        sim._log(
            f"-> BootNotification vendor={sim.vendor} model={sim.model}"
            f" <- {res.status} interval={res.interval}"
        )
        return res

    async def heartbeat(self) -> Any:
        res = await self.sim._call(call16.Heartbeat())
        self.sim._log(f"-> Heartbeat <- currentTime={res.current_time}")
        return res

    async def status(self, connector_id: int, status: str) -> Any:
        if status not in _STATUS_16:
            raise ValueError(f"{status!r} is not an OCPP 1.6 ChargePointStatus")
        res = await self.sim._call(
            call16.StatusNotification(
                connector_id=connector_id, error_code="NoError", status=status, timestamp=_now()
            )
        )
        self.sim._log(f"-> StatusNotification connector={connector_id} {status} <- ok")
        return res

    async def authorize(self, id_tag: str, id_token: dict[str, Any] | None = None) -> Any:
        res = await self.sim._call(call16.Authorize(id_tag=id_tag))
        self.sim._log(f"-> Authorize idTag={id_tag} <- {res.id_tag_info.get('status')}")
        return res

    async def start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start_wh: float,
        *,
        remote_start_id: int | None = None,
        id_token: dict[str, Any] | None = None,
    ) -> int:
        sim = self.sim
        reservation_id = sim._take_reservation(connector_id, id_tag)
        res = await sim._call(
            call16.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=round(meter_start_wh),
                timestamp=_now(),
                reservation_id=reservation_id,
            )
        )
        sim._transaction_started(res.transaction_id, connector_id, id_tag, meter_start_wh)
        sim._log(
            f"-> StartTransaction connector={connector_id} idTag={id_tag}"
            f" meterStart={round(meter_start_wh)}Wh"
            f" <- {res.id_tag_info.get('status')} transactionId={res.transaction_id}"
        )
        return res.transaction_id

    async def meter_values(
        self, connector_id: int, transaction_id: Any, energy_wh: float, power_w: float
    ) -> Any:
        sampled = [
            {
                "value": _number_text(energy_wh),
                "context": "Sample.Periodic",
                "measurand": _ENERGY,
                "unit": "Wh",
            },
            {
                "value": _number_text(power_w),
                "context": "Sample.Periodic",
                "measurand": _POWER,
                "unit": "W",
            },
        ]
        res = await self.sim._call(
            call16.MeterValues(
                connector_id=connector_id,
                transaction_id=transaction_id,
                meter_value=[{"timestamp": _now(), "sampled_value": sampled}],
            )
        )
        self.sim._log(
            f"-> MeterValues connector={connector_id} transactionId={transaction_id}"
            f" {_number_text(energy_wh)}Wh {_number_text(power_w)}W <- ok"
        )
        return res

    async def stop_transaction(
        self, transaction_id: Any, meter_stop_wh: float, reason: str, id_tag: str | None = None
    ) -> Any:
        reason = _REASON_16.get(reason, reason)
        res = await self.sim._call(
            call16.StopTransaction(
                meter_stop=round(meter_stop_wh),
                timestamp=_now(),
                transaction_id=transaction_id,
                reason=reason,
                id_tag=id_tag,
            )
        )
        self.sim._transaction_stopped(transaction_id)
        info = res.id_tag_info.get("status") if res.id_tag_info else "ok"
        self.sim._log(
            f"-> StopTransaction transactionId={transaction_id}"
            f" meterStop={round(meter_stop_wh)}Wh reason={reason} <- {info}"
        )
        return res

    async def data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        res = await self.sim._call(
            call16.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        )
        self.sim._log(
            f"-> DataTransfer vendorId={vendor_id} messageId={message_id} <- {res.status}"
        )
        return res

    async def _send_status_of(self, connector_id: int | None) -> None:
        targets = [connector_id] if connector_id else sorted(self.sim.connector_status)
        for connector in targets:
            await self.status(connector, self.sim.connector_status.get(connector, "Available"))

    # ---- CSMS-initiated commands (OCPP 1.6 §5) -------------------------------------------

    @on("RemoteStartTransaction")
    def on_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        sim = self.sim
        connector = connector_id or 1
        if (
            sim.transaction_id is not None
            or sim._starting
            or sim.connector_status.get(connector, "Unavailable") in ("Unavailable", "Faulted")
        ):
            return result16.RemoteStartTransaction(status="Rejected")
        sim._starting = True
        profile = self.payload.get("chargingProfile")
        self.then(
            "RemoteStartTransaction",
            lambda: sim._remote_start(connector, id_tag, profile=profile),
        )
        return result16.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> Any:
        sim = self.sim
        if sim.transaction_id is None or transaction_id != sim.transaction_id or sim._stopping:
            return result16.RemoteStopTransaction(status="Rejected")
        sim._stopping = True
        self.then("RemoteStopTransaction", lambda: sim._remote_stop(transaction_id, "Remote"))
        return result16.RemoteStopTransaction(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        reason = "HardReset" if type == "Hard" else "SoftReset"
        self.then("Reset", lambda: self.sim._reboot(reason))
        return result16.Reset(status="Accepted")

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        sim = self.sim
        if key not in sim.configuration:
            return result16.ChangeConfiguration(status="NotSupported")
        if key in sim.readonly_configuration:
            return result16.ChangeConfiguration(status="Rejected")
        sim.configuration[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        sim = self.sim
        wanted = key or list(sim.configuration)
        known = [
            {"key": k, "readonly": k in sim.readonly_configuration, "value": sim.configuration[k]}
            for k in wanted
            if k in sim.configuration
        ]
        unknown = [k for k in wanted if k not in sim.configuration]
        return result16.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("UnlockConnector")
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        sim = self.sim
        if connector_id not in sim.connector_status:
            return result16.UnlockConnector(status="NotSupported")
        if sim.transaction_id is not None and sim.transaction_connector_id == connector_id:
            # OCPP 1.6 §5.18: a transaction on the connector is stopped first.
            tx = sim.transaction_id
            sim._stopping = True
            self.then("UnlockConnector", lambda: sim._remote_stop(tx, "UnlockCommand"))
        return result16.UnlockConnector(status="Unlocked")

    @on("SetChargingProfile")
    def on_set_charging_profile(self, connector_id: int, **_: Any) -> Any:
        sim = self.sim
        profile = self.payload["csChargingProfiles"]
        purpose = profile["chargingProfilePurpose"]
        if purpose == "TxProfile" and (
            connector_id == 0
            or sim.transaction_id is None
            or sim.transaction_connector_id != connector_id
            or profile.get("transactionId", sim.transaction_id) != sim.transaction_id
        ):
            return result16.SetChargingProfile(status="Rejected")
        if profile["stackLevel"] > int(sim.configuration["ChargeProfileMaxStackLevel"]):
            return result16.SetChargingProfile(status="Rejected")
        sim._hold_profile(profile, connector_id)
        return result16.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> Any:
        cleared = self.sim._clear_profiles(id, connector_id, charging_profile_purpose, stack_level)
        return result16.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        sim = self.sim
        senders: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "BootNotification": lambda: self.boot("Triggered"),
            "Heartbeat": self.heartbeat,
            "StatusNotification": lambda: self._send_status_of(connector_id),
            "MeterValues": lambda: self.meter_values(
                connector_id or sim.transaction_connector_id or 1,
                sim.transaction_id,
                sim.energy_wh,
                sim.power_w,
            ),
            "DiagnosticsStatusNotification": lambda: sim._call(
                call16.DiagnosticsStatusNotification(status="Idle")
            ),
            "FirmwareStatusNotification": lambda: sim._call(
                call16.FirmwareStatusNotification(status="Idle")
            ),
        }
        if requested_message not in senders:
            return result16.TriggerMessage(status="NotImplemented")
        if connector_id is not None and connector_id not in sim.connector_status:
            return result16.TriggerMessage(status="Rejected")
        self.then(f"TriggerMessage {requested_message}", senders[requested_message])
        return result16.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        sim = self.sim
        targets = sorted(sim.connector_status) if connector_id == 0 else [connector_id]
        if any(c not in sim.connector_status for c in targets):
            return result16.ChangeAvailability(status="Rejected")
        new_status = "Available" if type == "Operative" else "Unavailable"
        if sim.transaction_id is not None and sim.transaction_connector_id in targets:
            return result16.ChangeAvailability(status="Scheduled")
        self.then("ChangeAvailability", lambda: sim._set_statuses(targets, new_status))
        return result16.ChangeAvailability(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, data: str | None = None, **_: Any) -> Any:
        return result16.DataTransfer(status="Accepted", data=data)

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        schedule = self.sim._composite_schedule(duration, charging_rate_unit)
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=_now(),
            charging_schedule=schedule,
        )

    @on("ReserveNow")
    def on_reserve_now(self, connector_id: int, id_tag: str, reservation_id: int, **_: Any) -> Any:
        sim = self.sim
        if connector_id not in sim.connector_status:
            return result16.ReserveNow(status="Rejected")
        if sim.transaction_id is not None or sim.connector_status[connector_id] != "Available":
            return result16.ReserveNow(status="Occupied")
        sim.reservations[reservation_id] = dict(self.payload)
        self.then("ReserveNow", lambda: sim._set_statuses([connector_id], "Reserved"))
        return result16.ReserveNow(status="Accepted")

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        sim = self.sim
        reservation = sim.reservations.pop(reservation_id, None)
        if reservation is None:
            return result16.CancelReservation(status="Rejected")
        connector = reservation["connectorId"]
        self.then("CancelReservation", lambda: sim._set_statuses([connector], "Available"))
        return result16.CancelReservation(status="Accepted")


class _Peer201(_PeerBase, v201.ChargePoint):
    """OCPP 2.0.1 charging station: the steps (B01, B05, C01, E01-E07, G01) and handlers."""

    evse_id: ClassVar[int] = 1
    known_actions = frozenset(a.value for a in Action201)

    # ---- charger-initiated steps -----------------------------------------------------------

    async def boot(self, reason: str) -> Any:
        sim = self.sim
        station = {"model": sim.model, "vendor_name": sim.vendor}
        if sim.serial_number:
            station["serial_number"] = sim.serial_number
        if sim.firmware_version:
            station["firmware_version"] = sim.firmware_version
        res = await sim._call(self._call.BootNotification(charging_station=station, reason=reason))
        sim._log(
            f"-> BootNotification vendor={sim.vendor} model={sim.model} reason={reason}"
            f" <- {res.status} interval={res.interval}"
        )
        return res

    async def heartbeat(self) -> Any:
        res = await self.sim._call(self._call.Heartbeat())
        self.sim._log(f"-> Heartbeat <- currentTime={res.current_time}")
        return res

    async def status(self, connector_id: int, status: str) -> Any:
        try:
            connector_status = _STATUS_201[status]
        except KeyError:
            raise ValueError(f"{status!r} is not a known connector status") from None
        res = await self.sim._call(
            self._call.StatusNotification(
                timestamp=_now(),
                connector_status=connector_status,
                evse_id=self.evse_id,
                connector_id=connector_id,
            )
        )
        self.sim._log(
            f"-> StatusNotification evse={self.evse_id} connector={connector_id}"
            f" {connector_status} <- ok"
        )
        return res

    async def authorize(self, id_tag: str, id_token: dict[str, Any] | None = None) -> Any:
        token = id_token or {"id_token": id_tag, "type": "ISO14443"}
        res = await self.sim._call(self._call.Authorize(id_token=token))
        self.sim._log(f"-> Authorize idToken={id_tag} <- {res.id_token_info.get('status')}")
        return res

    def _sample(self, context: str, energy_wh: float, power_w: float | None) -> dict[str, Any]:
        sampled: list[dict[str, Any]] = [
            {
                "value": energy_wh,
                "context": context,
                "measurand": _ENERGY,
                "unit_of_measure": {"unit": "Wh"},
            }
        ]
        if power_w is not None:
            sampled.append(
                {
                    "value": power_w,
                    "context": context,
                    "measurand": _POWER,
                    "unit_of_measure": {"unit": "W"},
                }
            )
        return {"timestamp": _now(), "sampled_value": sampled}

    async def _transaction_event(self, event_type: str, trigger: str, **fields: Any) -> Any:
        return await self.sim._call(
            self._call.TransactionEvent(
                event_type=event_type,
                timestamp=_now(),
                trigger_reason=trigger,
                seq_no=self.sim._next_seq_no(fields["transaction_info"]["transaction_id"]),
                **fields,
            )
        )

    async def start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start_wh: float,
        *,
        remote_start_id: int | None = None,
        id_token: dict[str, Any] | None = None,
    ) -> str:
        sim = self.sim
        transaction_id = str(uuid.uuid4())
        info: dict[str, Any] = {"transaction_id": transaction_id, "charging_state": "Charging"}
        if remote_start_id is not None:
            info["remote_start_id"] = remote_start_id
        token = id_token or {"id_token": id_tag, "type": "ISO14443"}
        res = await self._transaction_event(
            "Started",
            "RemoteStart" if remote_start_id is not None else "Authorized",
            transaction_info=info,
            id_token=token,
            evse={"id": self.evse_id, "connector_id": connector_id},
            meter_value=[self._sample("Transaction.Begin", meter_start_wh, None)],
            reservation_id=sim._take_reservation(connector_id, id_tag),
        )
        sim._transaction_started(transaction_id, connector_id, id_tag, meter_start_wh)
        answer = (res.id_token_info or {}).get("status", "ok")
        sim._log(
            f"-> TransactionEvent Started evse={self.evse_id} connector={connector_id}"
            f" idToken={id_tag} meter={_number_text(meter_start_wh)}Wh"
            f" transactionId={transaction_id} <- {answer}"
        )
        return transaction_id

    async def meter_values(
        self, connector_id: int, transaction_id: Any, energy_wh: float, power_w: float
    ) -> Any:
        sim = self.sim
        if transaction_id is None:
            # Outside a transaction: MeterValuesRequest (2.0.1 J01).
            res = await sim._call(
                self._call.MeterValues(
                    evse_id=self.evse_id,
                    meter_value=[self._sample("Sample.Periodic", energy_wh, power_w)],
                )
            )
            sim._log(
                f"-> MeterValues evse={self.evse_id} {_number_text(energy_wh)}Wh"
                f" {_number_text(power_w)}W <- ok"
            )
            return res
        res = await self._transaction_event(
            "Updated",
            "MeterValuePeriodic",
            transaction_info={"transaction_id": transaction_id, "charging_state": "Charging"},
            meter_value=[self._sample("Sample.Periodic", energy_wh, power_w)],
        )
        sim._log(
            f"-> TransactionEvent Updated transactionId={transaction_id}"
            f" {_number_text(energy_wh)}Wh {_number_text(power_w)}W <- ok"
        )
        return res

    async def stop_transaction(
        self, transaction_id: Any, meter_stop_wh: float, reason: str, id_tag: str | None = None
    ) -> Any:
        trigger = _STOP_TRIGGER_201.get(reason, "AbnormalCondition")
        stopped_reason = _REASON_201.get(reason, reason)
        token = {"id_token": id_tag, "type": "ISO14443"} if id_tag is not None else None
        res = await self._transaction_event(
            "Ended",
            trigger,
            transaction_info={
                "transaction_id": transaction_id,
                "charging_state": "Idle",
                "stopped_reason": stopped_reason,
            },
            meter_value=[self._sample("Transaction.End", meter_stop_wh, None)],
            id_token=token,
        )
        self.sim._transaction_stopped(transaction_id)
        self.sim._log(
            f"-> TransactionEvent Ended transactionId={transaction_id}"
            f" meter={_number_text(meter_stop_wh)}Wh reason={stopped_reason} <- ok"
        )
        return res

    async def data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        res = await self.sim._call(
            self._call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        )
        self.sim._log(
            f"-> DataTransfer vendorId={vendor_id} messageId={message_id} <- {res.status}"
        )
        return res

    async def _send_status_of(self, evse: dict[str, Any] | None) -> None:
        connector = (evse or {}).get("connectorId")
        targets = [connector] if connector else sorted(self.sim.connector_status)
        for c in targets:
            await self.status(c, self.sim.connector_status.get(c, "Available"))

    # ---- CSMS-initiated commands -----------------------------------------------------------

    @on("RequestStartTransaction")
    def on_request_start_transaction(
        self, remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> Any:
        sim = self.sim
        if (
            sim.transaction_id is not None
            or sim._starting
            or evse_id not in (None, self.evse_id)
            or sim.connector_status.get(1) in ("Unavailable", "Faulted")
        ):
            return self._call_result.RequestStartTransaction(status="Rejected")
        sim._starting = True
        token = self.payload["idToken"]
        profile = self.payload.get("chargingProfile")
        self.then(
            "RequestStartTransaction",
            lambda: sim._remote_start(
                1,
                token["idToken"],
                id_token=token,
                remote_start_id=remote_start_id,
                profile=profile,
            ),
        )
        return self._call_result.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def on_request_stop_transaction(self, transaction_id: str, **_: Any) -> Any:
        sim = self.sim
        if sim.transaction_id is None or transaction_id != sim.transaction_id or sim._stopping:
            return self._call_result.RequestStopTransaction(status="Rejected")
        sim._stopping = True
        self.then("RequestStopTransaction", lambda: sim._remote_stop(transaction_id, "Remote"))
        return self._call_result.RequestStopTransaction(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        if type == "OnIdle" and self.sim.transaction_id is not None:
            # B12: reset once the transaction has ended; this simulator does not reboot later.
            return self._call_result.Reset(status="Scheduled")
        self.then("Reset", lambda: self.sim._reboot("ImmediateReset"))
        return self._call_result.Reset(status="Accepted")

    @on("GetVariables")
    def on_get_variables(self, **_: Any) -> Any:
        sim = self.sim
        results = []
        for item in self.payload["getVariableData"]:
            component, variable = item["component"], item["variable"]
            key = (component["name"], variable["name"])
            entry: dict[str, Any] = {"component": component, "variable": variable}
            attribute_type = item.get("attributeType", "Actual")
            if attribute_type != "Actual":
                entry["attributeStatus"] = "NotSupportedAttributeType"
            elif key in sim.variables:
                entry["attributeStatus"] = "Accepted"
                entry["attributeValue"] = sim.variables[key]
            elif any(c == key[0] for c, _v in sim.variables):
                entry["attributeStatus"] = "UnknownVariable"
            else:
                entry["attributeStatus"] = "UnknownComponent"
            if "attributeType" in item:
                entry["attributeType"] = attribute_type
            results.append(entry)
        return self._call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, **_: Any) -> Any:
        sim = self.sim
        results = []
        for item in self.payload["setVariableData"]:
            component, variable = item["component"], item["variable"]
            key = (component["name"], variable["name"])
            entry: dict[str, Any] = {"component": component, "variable": variable}
            if item.get("attributeType", "Actual") != "Actual":
                entry["attributeStatus"] = "NotSupportedAttributeType"
            elif key in sim.readonly_variables:
                entry["attributeStatus"] = "Rejected"
            elif key in sim.variables:
                sim.variables[key] = item["attributeValue"]
                entry["attributeStatus"] = "Accepted"
            elif any(c == key[0] for c, _v in sim.variables):
                entry["attributeStatus"] = "UnknownVariable"
            else:
                entry["attributeStatus"] = "UnknownComponent"
            if "attributeType" in item:
                entry["attributeType"] = item["attributeType"]
            results.append(entry)
        return self._call_result.SetVariables(set_variable_result=results)

    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id: int, **_: Any) -> Any:
        sim = self.sim
        profile = self.payload["chargingProfile"]
        purpose = profile["chargingProfilePurpose"]
        if purpose == "TxProfile" and (
            evse_id == 0
            or sim.transaction_id is None
            or profile.get("transactionId") != sim.transaction_id
        ):
            return self._call_result.SetChargingProfile(status="Rejected")
        if evse_id not in (0, self.evse_id):
            return self._call_result.SetChargingProfile(status="Rejected")
        sim._hold_profile(profile, evse_id)
        return self._call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, charging_profile_id: int | None = None, **_: Any) -> Any:
        criteria = self.payload.get("chargingProfileCriteria") or {}
        cleared = self.sim._clear_profiles(
            charging_profile_id,
            criteria.get("evseId"),
            criteria.get("chargingProfilePurpose"),
            criteria.get("stackLevel"),
        )
        return self._call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        sim = self.sim
        evse = self.payload.get("evse")
        if evse is not None and evse.get("id") != self.evse_id:
            return self._call_result.TriggerMessage(status="Rejected")
        senders: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "BootNotification": lambda: self.boot("Triggered"),
            "Heartbeat": self.heartbeat,
            "StatusNotification": lambda: self._send_status_of(evse),
            "MeterValues": lambda: self.meter_values(
                1, None, sim.energy_wh, sim.power_w if sim.transaction_id else 0
            ),
        }
        if sim.transaction_id is not None:
            tx = sim.transaction_id
            senders["TransactionEvent"] = lambda: self._triggered_transaction_event(tx)
        elif requested_message == "TransactionEvent":
            return self._call_result.TriggerMessage(status="Rejected")
        if requested_message not in senders:
            return self._call_result.TriggerMessage(status="NotImplemented")
        self.then(f"TriggerMessage {requested_message}", senders[requested_message])
        return self._call_result.TriggerMessage(status="Accepted")

    async def _triggered_transaction_event(self, transaction_id: str) -> Any:
        sim = self.sim
        res = await self._transaction_event(
            "Updated",
            "Trigger",
            transaction_info={"transaction_id": transaction_id, "charging_state": "Charging"},
            meter_value=[self._sample("Trigger", sim.energy_wh, sim.power_w)],
        )
        sim._log(f"-> TransactionEvent Updated (Trigger) transactionId={transaction_id} <- ok")
        return res

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status: str, **_: Any) -> Any:
        sim = self.sim
        evse = self.payload.get("evse")
        if evse is not None and evse.get("id") not in (0, self.evse_id):
            return self._call_result.ChangeAvailability(status="Rejected")
        connector = (evse or {}).get("connectorId")
        targets = [connector] if connector else sorted(sim.connector_status)
        if any(c not in sim.connector_status for c in targets):
            return self._call_result.ChangeAvailability(status="Rejected")
        if sim.transaction_id is not None and sim.transaction_connector_id in targets:
            return self._call_result.ChangeAvailability(status="Scheduled")
        new_status = "Available" if operational_status == "Operative" else "Unavailable"
        self.then("ChangeAvailability", lambda: sim._set_statuses(targets, new_status))
        return self._call_result.ChangeAvailability(status="Accepted")

    @on("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        sim = self.sim
        if evse_id != self.evse_id or connector_id not in sim.connector_status:
            return self._call_result.UnlockConnector(status="UnknownConnector")
        if sim.transaction_id is not None and sim.transaction_connector_id == connector_id:
            return self._call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        return self._call_result.UnlockConnector(status="Unlocked")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return self._call_result.DataTransfer(status="Accepted", data=self.payload.get("data"))


class _Peer21(_Peer201):
    """OCPP 2.1: the 2.0.1 flow, validated against the 2.1 schemas of ``ocpp.v21``."""

    _call = v21.call
    _call_result = v21.call_result
    _ocpp_version = "2.1"
    known_actions = frozenset(a.value for a in Action21)


_PEERS: dict[str, type[_PeerBase]] = {"1.6": _Peer16, "2.0.1": _Peer201, "2.1": _Peer21}


def _authorization_status(answer: Any) -> str | None:
    """The ``status`` of an Authorize answer (1.6 ``idTagInfo`` / 2.0.1 ``idTokenInfo``)."""
    info = getattr(answer, "id_tag_info", None) or getattr(answer, "id_token_info", None) or {}
    return info.get("status")


def _number_text(value: float) -> str:
    """A meter reading as OCPP 1.6 text: ``"1234"`` for whole numbers, else ``"1234.5"``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


# --------------------------------------------------------------------------------------------
# The public, version-neutral charger.
# --------------------------------------------------------------------------------------------


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
      (W) of the last meter sample;
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
        if version not in _PEERS:
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
        #: The last answer to each action the charger sent (``ocpp`` call_result dataclasses).
        self.answers: dict[str, Any] = {}
        self._consumed: set[int] = set()
        self._received_changed = asyncio.Condition()

        self.transaction_id: int | str | None = None
        self.transaction_connector_id: int | None = None
        self.transaction_id_tag: str | None = None
        self.transaction_ids: list[int | str] = []
        self.energy_wh: float = 0
        self.power_w: float = 0
        self.connector_status: dict[int, str] = {1: "Available"}
        self.configuration: dict[str, str] = {
            "HeartbeatInterval": "300",
            "MeterValueSampleInterval": "60",
            "MeterValuesSampledData": f"{_ENERGY},{_POWER}",
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
            ("SampledDataCtrlr", "TxUpdatedMeasurands"): f"{_ENERGY},{_POWER}",
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
        peer_cls = _PEERS[version]
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
        if version not in _PEERS:
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
        self,
        transaction_id: int | str,
        meter_stop_wh: float | None = None,
        reason: str = "Local",
        id_tag: str | None = None,
    ) -> Any:
        """Stop transaction ``transaction_id`` with the register at ``meter_stop_wh`` (Wh).

        1.6: StopTransaction (OCPP 1.6 §4.10) with ``reason`` (1.6 Reason type, e.g. ``Local``,
        ``Remote``).  2.0.1: TransactionEvent ``Ended`` (2.0.1 E06) with ``stoppedReason``
        (1.6 names are translated, e.g. ``HardReset`` -> ``ImmediateReset``), a trigger reason
        derived from it and a ``Transaction.End`` register sample.  ``meter_stop_wh`` defaults
        to ``energy_wh``.  ``id_tag``: the card that stopped it (1.6 ``idTag``, 2.0.1 ``idToken``),
        if any.  Clears ``transaction_id`` and the TxProfiles held; returns the answer.
        """
        meter = self.energy_wh if meter_stop_wh is None else meter_stop_wh
        self.energy_wh = meter
        return await self._peer.stop_transaction(transaction_id, meter, reason, id_tag)

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
            status = _authorization_status(await self.authorize(id_tag))
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
            self.answers[action] = request.result()
            return self.answers[action]
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
                if _authorization_status(answer) != "Accepted":
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


# --------------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------------


async def run_simulation(
    url: str,
    charge_point_id: str = "CP_1",
    version: str = "1.6",
    transactions: int = 1,
    log: Callable[[str], None] = print,
    *,
    meter_samples: int = 3,
) -> int:
    """Connect to ``url`` as ``charge_point_id`` and play :meth:`SimulatedCharger.run_session`.

    ``url`` is a charger endpoint such as ``ws://localhost:9000/charger``; ``/<id>`` is
    appended unless it already ends with the id (:func:`charger_url`).  ``transactions`` and
    ``meter_samples`` are as in ``run_session``.  Every exchange is reported through ``log``.
    Returns the process exit code: 0 when the session completed, 1 when the connection could
    not be opened or was lost, or the CSMS refused the session (the reason is logged).
    """
    target = charger_url(url, charge_point_id)
    try:
        charger = await SimulatedCharger.connect(target, charge_point_id, version, log=log)
    except ValueError as exc:
        log(f"error: {exc}")
        return 1
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        log(f"error: cannot connect to {target}: {exc or type(exc).__name__}")
        return 1
    async with charger:
        try:
            created = await charger.run_session(transactions, meter_samples)
        except (ConnectionError, ConnectionClosed) as exc:
            log(f"error: connection to {target} lost: {exc}")
            return 1
        except TimeoutError as exc:
            log(f"error: no answer from {target}: {exc}")
            return 1
        except (SimulationError, OCPPError) as exc:
            log(f"error: session refused by {target}: {exc}")
            return 1
    log(f"done: {len(created)} transaction(s) {created}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``.

    ``--url`` (required; the charger endpoint, ``/<id>`` is appended), ``--id`` (charge point
    id, default CP_1), ``--version`` (1.6, 2.0.1 or 2.1; default 1.6), ``--transactions`` (int,
    default 1), ``--meter-samples`` (meter samples per transaction, default 3).
    """
    parser.add_argument(
        "--url",
        required=True,
        help="charger endpoint, e.g. ws://localhost:9000/charger (the id is appended)",
    )
    parser.add_argument("--id", default="CP_1", help="charge point id (default: %(default)s)")
    parser.add_argument(
        "--version",
        default="1.6",
        choices=SUPPORTED_VERSIONS,
        help="OCPP version to speak (default: %(default)s)",
    )
    parser.add_argument(
        "--transactions",
        type=_non_negative_int,
        default=1,
        help="number of charging transactions to play (default: %(default)s)",
    )
    parser.add_argument(
        "--meter-samples",
        type=_non_negative_int,
        default=3,
        help="meter samples per transaction (default: %(default)s)",
    )


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


async def main_async(args: argparse.Namespace) -> int:
    """Run the simulation that parsed :func:`add_arguments` options describe.

    Returns the exit code of :func:`run_simulation` (0 success, 1 failure).
    """
    return await run_simulation(
        args.url,
        args.id,
        args.version,
        args.transactions,
        meter_samples=args.meter_samples,
    )
