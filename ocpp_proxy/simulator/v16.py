"""The simulator's OCPP 1.6 (JSON) charge point: the steps of OCPP 1.6 §4, the handlers of §5."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from ocpp import v16
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import ChargePointStatus

from ocpp_proxy.simulator.common import (
    ENERGY,
    POWER,
    PeerBase,
    now_iso,
    number_text,
    power_by_phase,
)

_STATUS_16 = frozenset(s.value for s in ChargePointStatus)
_REASON_16 = {"ImmediateReset": "HardReset"}


class _Peer16(PeerBase, v16.ChargePoint):
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
                connector_id=connector_id, error_code="NoError", status=status, timestamp=now_iso()
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
                timestamp=now_iso(),
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
                "value": number_text(energy_wh),
                "context": "Sample.Periodic",
                "measurand": ENERGY,
                "unit": "Wh",
            },
            *(
                {
                    "value": number_text(watts),
                    "context": "Sample.Periodic",
                    "measurand": POWER,
                    "unit": "W",
                    **({"phase": phase} if phase else {}),
                }
                for phase, watts in power_by_phase(power_w, self.sim.phases)
            ),
        ]
        res = await self.sim._call(
            call16.MeterValues(
                connector_id=connector_id,
                transaction_id=transaction_id,
                meter_value=[{"timestamp": now_iso(), "sampled_value": sampled}],
            )
        )
        self.sim._log(
            f"-> MeterValues connector={connector_id} transactionId={transaction_id}"
            f" {number_text(energy_wh)}Wh {number_text(power_w)}W <- ok"
        )
        return res

    async def stop_transaction(self, transaction_id: Any, meter_stop_wh: float, reason: str) -> Any:
        reason = _REASON_16.get(reason, reason)
        res = await self.sim._call(
            call16.StopTransaction(
                meter_stop=round(meter_stop_wh),
                timestamp=now_iso(),
                transaction_id=transaction_id,
                reason=reason,
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
            schedule_start=now_iso(),
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


#: The OCPP 1.6 peer of :class:`~ocpp_proxy.simulator.charger.SimulatedCharger`.
PEER_16: type[PeerBase] = _Peer16
