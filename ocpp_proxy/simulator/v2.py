"""The simulator's OCPP 2.0.1 and 2.1 charging station (one EVSE, ``evseId`` 1).

A 1.6 ``connectorId`` *n* of :class:`~ocpp_proxy.simulator.charger.SimulatedCharger` is sent as
EVSE 1, connector *n*; 1.6 statuses and stop reasons are translated to their 2.0.1 names.
OCPP 2.1 reuses the 2.0.1 message flow through ``ocpp.v21``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from ocpp import v21, v201
from ocpp.routing import on
from ocpp.v21.enums import Action as Action21
from ocpp.v201.enums import Action as Action201

from ocpp_proxy.simulator.common import (
    ENERGY,
    POWER,
    PeerBase,
    now_iso,
    number_text,
    power_by_phase,
)

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
# StopTransaction reasons (OCPP 1.6 Reason type, §7) that 2.0.1 (ReasonEnumType) names differently.
_REASON_201 = {"HardReset": "ImmediateReset", "SoftReset": "Reboot", "UnlockCommand": "Other"}
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


class _Peer201(PeerBase, v201.ChargePoint):
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
                timestamp=now_iso(),
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
                "measurand": ENERGY,
                "unit_of_measure": {"unit": "Wh"},
            }
        ]
        if power_w is not None:
            sampled += [
                {
                    "value": watts,
                    "context": context,
                    "measurand": POWER,
                    "unit_of_measure": {"unit": "W"},
                    **({"phase": phase} if phase else {}),
                }
                for phase, watts in power_by_phase(power_w, self.sim.phases)
            ]
        return {"timestamp": now_iso(), "sampled_value": sampled}

    async def _transaction_event(self, event_type: str, trigger: str, **fields: Any) -> Any:
        return await self.sim._call(
            self._call.TransactionEvent(
                event_type=event_type,
                timestamp=now_iso(),
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
            f" idToken={id_tag} meter={number_text(meter_start_wh)}Wh"
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
                f"-> MeterValues evse={self.evse_id} {number_text(energy_wh)}Wh"
                f" {number_text(power_w)}W <- ok"
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
            f" {number_text(energy_wh)}Wh {number_text(power_w)}W <- ok"
        )
        return res

    async def stop_transaction(self, transaction_id: Any, meter_stop_wh: float, reason: str) -> Any:
        trigger = _STOP_TRIGGER_201.get(reason, "AbnormalCondition")
        stopped_reason = _REASON_201.get(reason, reason)
        res = await self._transaction_event(
            "Ended",
            trigger,
            transaction_info={
                "transaction_id": transaction_id,
                "charging_state": "Idle",
                "stopped_reason": stopped_reason,
            },
            meter_value=[self._sample("Transaction.End", meter_stop_wh, None)],
        )
        self.sim._transaction_stopped(transaction_id)
        self.sim._log(
            f"-> TransactionEvent Ended transactionId={transaction_id}"
            f" meter={number_text(meter_stop_wh)}Wh reason={stopped_reason} <- ok"
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


#: The OCPP 2.0.1 and 2.1 peers of :class:`~ocpp_proxy.simulator.charger.SimulatedCharger`.
PEER_201: type[PeerBase] = _Peer201
PEER_21: type[PeerBase] = _Peer21
