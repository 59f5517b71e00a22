"""Charger-initiated messages: a charger's CALL as the backend's, and the answer back.

Two tables, one per direction: :data:`FROM_16_TO_2X` (an OCPP 1.6 charger, a 2.0.1 / 2.1
backend) and :data:`FROM_2X_TO_16` (a 2.0.1 / 2.1 charging station, a 1.6 backend). Each maps
the charger's action to ``(request, answer)``: ``request(payload, context)`` gives the
:class:`~ocpp_proxy.translation.common.Outcome` for the backend, ``answer(payload, memo)`` turns
the backend's CALLRESULT payload into the charger's. docs/translation.md is the field-by-field
description; comments here say only why.
"""

from __future__ import annotations

from ocpp_proxy.translation.common import (
    CARD,
    CENTRAL,
    Forward,
    Outcome,
    Payload,
    Reply,
    Untranslatable,
    data_transfer_answer_16,
    data_transfer_to_2x,
    data_transfer_to_16,
    empty_answer,
    energy_register_wh,
    energy_sample,
    id_tag,
    id_tag_info,
    id_token,
    id_token_info,
    meter_values_to_2x,
    meter_values_to_16,
    pick,
    status_only,
)
from ocpp_proxy.translation.state import Context, RequestFn, Transaction2x
from ocpp_proxy.translation.tables import (
    CHARGING_STATE_TO_2X,
    CHARGING_STATE_TO_16,
    CONNECTOR_STATUS_TO_2X,
    CONNECTOR_STATUS_TO_16,
    DIAGNOSTICS_STATUS_TO_2X,
    FIRMWARE_STATUS_TO_16,
    LOG_STATUS_TO_16,
    STOP_REASON_TO_2X,
    STOP_REASON_TO_16,
    STOP_TRIGGER_TO_2X,
)

# == an OCPP 1.6 charger, a 2.x backend =========================================================


def _boot_to_2x(p: Payload, c: Context) -> Outcome:
    station: Payload = {
        "model": p.get("chargePointModel", ""),
        "vendorName": p.get("chargePointVendor", ""),
    }
    serial = p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber")
    if serial:
        station["serialNumber"] = serial
    if p.get("firmwareVersion"):
        station["firmwareVersion"] = p["firmwareVersion"]
    modem = pick(p, "iccid", "imsi")
    if modem:
        station["modem"] = modem
    # 1.6 gives no boot reason; a reset this link asked for is the likely one.
    reason, c.state.boot_reason = c.state.boot_reason or "PowerUp", None
    return Forward("BootNotification", {"reason": reason, "chargingStation": station})


def _boot_answer(p: Payload, _memo: dict) -> Payload:
    return pick(p, "currentTime", "interval", "status")


def _heartbeat_answer(p: Payload, _memo: dict) -> Payload:
    return pick(p, "currentTime")


def _evse(connector: int) -> Payload:
    # One connector per EVSE: the 1.6 connector number is the EVSE id (docs/translation.md).
    return {"id": connector, "connectorId": 1}


def _status_to_2x(p: Payload, c: Context) -> Outcome:
    state = c.state
    connector = p.get("connectorId", 0)
    status = p.get("status", "")
    error = p.get("errorCode", "NoError")
    timestamp = p.get("timestamp") or c.now
    state.connector_status[connector] = status
    if connector == 0:
        # The charge point as a whole: 2.x reports it as the station's AvailabilityState.
        return Forward(
            "NotifyEvent", _event(c, "ChargingStation", None, "AvailabilityState", status, p)
        )
    connector_status = CONNECTOR_STATUS_TO_2X.get(status, "Unavailable")
    unchanged = state.connector_2x.get(connector) == connector_status
    if error != "NoError" and status != "Faulted" and unchanged:
        # A warning without a status change: 2.x has NotifyEvent for it, not StatusNotification.
        return Forward("NotifyEvent", _event(c, "Connector", connector, "Problem", "true", p))
    in_transaction = [tx for tx, where in state.tx_connector.items() if where == connector]
    if unchanged and in_transaction and status in CHARGING_STATE_TO_2X:
        # Occupied stays Occupied: what changed is the transaction's charging state (E02).
        transaction_id = state.transaction_id_2x(in_transaction[-1])
        return Forward(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": timestamp,
                "triggerReason": "ChargingStateChanged",
                "seqNo": _seq_no(c, transaction_id),
                "transactionInfo": {
                    "transactionId": transaction_id,
                    "chargingState": CHARGING_STATE_TO_2X[status],
                },
                "evse": _evse(connector),
            },
        )
    state.connector_2x[connector] = connector_status
    return Forward(
        "StatusNotification",
        {
            "timestamp": timestamp,
            "connectorStatus": connector_status,
            "evseId": connector,
            "connectorId": 1,
        },
    )


def _event(
    c: Context, component: str, evse: int | None, variable: str, value: str, p: Payload
) -> Payload:
    state = c.state
    event_id = state.new_request_id("NotifyEvent")
    data: Payload = {
        "eventId": event_id,
        "timestamp": p.get("timestamp") or c.now,
        "trigger": "Delta" if variable == "AvailabilityState" else "Alerting",
        "actualValue": value,
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": component},
        "variable": {"name": variable},
    }
    if evse is not None:
        data["component"]["evse"] = _evse(evse)
    if p.get("vendorErrorCode"):
        data["techCode"] = str(p["vendorErrorCode"])[:50]
    error = p.get("errorCode", "NoError")
    info = ": ".join(str(x) for x in (error, p.get("info")) if x and x != "NoError")
    if info:
        data["techInfo"] = info[:500]
    return {"generatedAt": c.now, "seqNo": 0, "eventData": [data]}


def _authorize_to_2x(p: Payload, _c: Context) -> Outcome:
    return Forward("Authorize", {"idToken": id_token(p.get("idTag", ""))})


def _authorize_answer_16(p: Payload, _memo: dict) -> Payload:
    return {"idTagInfo": id_tag_info(p.get("idTokenInfo"))}


def _transaction_of(p: Payload, c: Context) -> int:
    charger_tx = c.transaction_id if c.transaction_id is not None else p.get("transactionId")
    if type(charger_tx) is not int:
        raise Untranslatable(f"{c.action} names no transaction the proxy knows")
    return charger_tx


def _start_to_2x(p: Payload, c: Context) -> Outcome:
    state = c.state
    charger_tx = _transaction_of(p, c)
    transaction_id = state.transaction_id_2x(charger_tx)
    connector = p.get("connectorId", 1)
    state.tx_connector[charger_tx] = connector
    tag = p.get("idTag", "")
    remote = state.remote_starts.pop(tag.lower(), None)
    if remote is not None and remote.connector not in (None, connector):
        remote = None
    timestamp = p.get("timestamp") or c.now
    info: Payload = {"transactionId": transaction_id}
    charging = CHARGING_STATE_TO_2X.get(state.connector_status.get(connector, ""))
    if charging:
        info["chargingState"] = charging
    if remote is not None:
        info["remoteStartId"] = remote.remote_start_id
    event: Payload = {
        "eventType": "Started",
        "timestamp": timestamp,
        "triggerReason": "RemoteStart" if remote else "Authorized",
        "seqNo": _seq_no(c, transaction_id),
        "transactionInfo": info,
        "idToken": id_token(tag, CENTRAL if remote else CARD),
        "evse": _evse(connector),
        "meterValue": [energy_sample(p.get("meterStart", 0), "Transaction.Begin", timestamp)],
    }
    if p.get("reservationId") is not None:
        event["reservationId"] = p["reservationId"]
    c.memo["transaction_id"] = charger_tx
    return Forward("TransactionEvent", event)


def _start_answer_16(p: Payload, memo: dict) -> Payload:
    # The relay names the charger's transaction id itself; the backend's is its string one.
    info = p.get("idTokenInfo")
    tag_info = id_tag_info(info) if isinstance(info, dict) else {"status": "Accepted"}
    return {"transactionId": memo.get("transaction_id", 0), "idTagInfo": tag_info}


def _seq_no(c: Context, transaction_id: str) -> int:
    """The event's ``seqNo``; its confirmation makes the count durable (see state.durable)."""
    c.memo["seq_transaction"] = transaction_id
    c.memo["state"] = c.state
    return c.state.next_seq_no(transaction_id)


def _trigger_of(meter_values: list[Payload]) -> str:
    contexts = {s.get("context") for m in meter_values for s in m.get("sampledValue", [])}
    if "Trigger" in contexts:
        return "Trigger"
    if "Sample.Clock" in contexts:
        return "MeterValueClock"
    return "MeterValuePeriodic"


def _meter_values_to_2x(p: Payload, c: Context) -> Outcome:
    state = c.state
    meter_values = meter_values_to_2x(p.get("meterValue"))
    connector = p.get("connectorId", 0)
    if c.transaction_id is None and p.get("transactionId") is None:
        if not meter_values:
            return Reply({})  # nothing a 2.x backend could read
        return Forward("MeterValues", {"evseId": connector, "meterValue": meter_values})
    charger_tx = _transaction_of(p, c)
    transaction_id = state.transaction_id_2x(charger_tx)
    info: Payload = {"transactionId": transaction_id}
    charging = CHARGING_STATE_TO_2X.get(state.connector_status.get(connector, ""))
    if charging:
        info["chargingState"] = charging
    event: Payload = {
        "eventType": "Updated",
        "timestamp": meter_values[0]["timestamp"] if meter_values else c.now,
        "triggerReason": _trigger_of(meter_values),
        "seqNo": _seq_no(c, transaction_id),
        "transactionInfo": info,
    }
    if connector:
        event["evse"] = _evse(connector)
    if meter_values:
        event["meterValue"] = meter_values
    return Forward("TransactionEvent", event)


def _stop_to_2x(p: Payload, c: Context) -> Outcome:
    state = c.state
    charger_tx = _transaction_of(p, c)
    transaction_id = state.transaction_id_2x(charger_tx)
    connector = state.tx_connector.pop(charger_tx, None)
    state.ended_16[transaction_id] = True
    reason = p.get("reason", "Local")
    timestamp = p.get("timestamp") or c.now
    meter_values = meter_values_to_2x(p.get("transactionData"))
    meter_values.append(energy_sample(p.get("meterStop", 0), "Transaction.End", timestamp))
    event: Payload = {
        "eventType": "Ended",
        "timestamp": timestamp,
        "triggerReason": STOP_TRIGGER_TO_2X.get(reason, "AbnormalCondition"),
        "seqNo": _seq_no(c, transaction_id),
        "transactionInfo": {
            "transactionId": transaction_id,
            "stoppedReason": STOP_REASON_TO_2X.get(reason, "Other"),
        },
        "meterValue": meter_values,
    }
    if p.get("idTag"):
        event["idToken"] = id_token(p["idTag"])
    if connector:
        event["evse"] = _evse(connector)
    return Forward("TransactionEvent", event)


def _stop_answer_16(p: Payload, _memo: dict) -> Payload:
    info = p.get("idTokenInfo")
    return {"idTagInfo": id_tag_info(info)} if isinstance(info, dict) else {}


def _firmware_to_2x(p: Payload, c: Context) -> Outcome:
    payload = pick(p, "status")
    if c.state.firmware_request_id is not None:
        payload["requestId"] = c.state.firmware_request_id
    return Forward("FirmwareStatusNotification", payload)


def _signed_firmware_to_2x(p: Payload, _c: Context) -> Outcome:
    return Forward("FirmwareStatusNotification", pick(p, "status", "requestId"))


def _diagnostics_to_2x(p: Payload, c: Context) -> Outcome:
    payload: Payload = {"status": DIAGNOSTICS_STATUS_TO_2X.get(p.get("status", ""), "Idle")}
    if c.state.log_request_id is not None:
        payload["requestId"] = c.state.log_request_id
    return Forward("LogStatusNotification", payload)


def _same_action(*fields: str) -> RequestFn:
    def request(p: Payload, c: Context) -> Outcome:
        return Forward(c.action, pick(p, *fields))

    return request


FROM_16_TO_2X = {
    "BootNotification": (_boot_to_2x, _boot_answer),
    "Heartbeat": (lambda p, c: Forward("Heartbeat", {}), _heartbeat_answer),
    "StatusNotification": (_status_to_2x, empty_answer),
    "Authorize": (_authorize_to_2x, _authorize_answer_16),
    "StartTransaction": (_start_to_2x, _start_answer_16),
    "MeterValues": (_meter_values_to_2x, empty_answer),
    "StopTransaction": (_stop_to_2x, _stop_answer_16),
    "DataTransfer": (data_transfer_to_2x, data_transfer_answer_16),
    "FirmwareStatusNotification": (_firmware_to_2x, empty_answer),
    "DiagnosticsStatusNotification": (_diagnostics_to_2x, empty_answer),
    # The 1.6 security extension's messages are 2.x's under the same names.
    "SecurityEventNotification": (_same_action("type", "timestamp", "techInfo"), empty_answer),
    "LogStatusNotification": (_same_action("status", "requestId"), empty_answer),
    "SignCertificate": (_same_action("csr"), status_only),
    "SignedFirmwareStatusNotification": (_signed_firmware_to_2x, empty_answer),
}


# == a 2.x charging station, an OCPP 1.6 backend ================================================


def _boot_to_16(p: Payload, _c: Context) -> Outcome:
    station = p.get("chargingStation") or {}
    payload: Payload = {
        # 1.6 allows 20 characters of vendor name where 2.x allows 50.
        "chargePointVendor": str(station.get("vendorName", ""))[:20],
        "chargePointModel": str(station.get("model", ""))[:20],
    }
    if station.get("serialNumber"):
        payload["chargePointSerialNumber"] = station["serialNumber"]
    if station.get("firmwareVersion"):
        payload["firmwareVersion"] = station["firmwareVersion"]
    modem = station.get("modem") or {}
    payload.update(pick(modem, "iccid", "imsi"))
    return Forward("BootNotification", payload)


def _status_to_16(p: Payload, c: Context) -> Outcome:
    evse = p.get("evseId", 0)
    status = CONNECTOR_STATUS_TO_16.get(p.get("connectorStatus", ""), "Unavailable")
    if status == "Preparing":
        running = [tx for tx in c.state.transactions_2x.values() if tx.evse == evse]
        if running and running[-1].charging_state:
            status = CHARGING_STATE_TO_16.get(running[-1].charging_state, "Preparing")
        elif evse in c.state.connector_status and c.state.connector_status[evse] == "Finishing":
            status = "Finishing"
    c.state.connector_status[evse] = status
    return Forward(
        "StatusNotification",
        {
            "connectorId": evse,
            "errorCode": "OtherError" if status == "Faulted" else "NoError",
            "status": status,
            "timestamp": p.get("timestamp") or c.now,
        },
    )


def _authorize_to_16(p: Payload, c: Context) -> Outcome:
    try:
        return Forward("Authorize", {"idTag": id_tag(p.get("idToken"), c.action)})
    except Untranslatable:
        # A 1.6 backend cannot judge a token it cannot be shown.
        return Reply({"idTokenInfo": {"status": "Unknown"}})


def _authorize_answer_2x(p: Payload, _memo: dict) -> Payload:
    return {"idTokenInfo": id_token_info(p.get("idTagInfo"))}


def _transaction_event_to_16(p: Payload, c: Context) -> Outcome:
    state = c.state
    info = p.get("transactionInfo") or {}
    transaction_id = str(info.get("transactionId", ""))
    evse = (p.get("evse") or {}).get("id")
    tx = state.transactions_2x.get(transaction_id)
    if tx is None:
        tx = Transaction2x(evse=evse or 1)
        state.transactions_2x[transaction_id] = tx
    elif evse:
        tx.evse = evse
    if isinstance(p.get("idToken"), dict) and tx.id_tag is None:
        tx.id_tag = id_tag(p["idToken"], c.action)  # Untranslatable: refused, see translator
    if info.get("chargingState"):
        tx.charging_state = info["chargingState"]
    if p.get("reservationId") is not None:
        tx.reservation_id = p["reservationId"]
    register = energy_register_wh(p.get("meterValue"))
    if register is not None:
        if tx.meter_start_wh is None:
            tx.meter_start_wh = register
        tx.last_register_wh = register
    timestamp = p.get("timestamp") or c.now
    if tx.start_time is None:
        tx.start_time = timestamp
    event = p.get("eventType")
    if event == "Ended":
        state.transactions_2x.pop(transaction_id, None)
        state.dirty.add(transaction_id)
        state.connector_status[tx.evse] = "Finishing"
        if not tx.started or tx.backend_id is None:
            return Reply({})  # the 1.6 backend never heard of it (no id token ever came)
        stop: Payload = {
            "transactionId": tx.backend_id,
            "meterStop": _meter_stop(p, tx),
            "timestamp": timestamp,
            "reason": _stop_reason_16(p, info),
        }
        if isinstance(p.get("idToken"), dict):
            stop["idTag"] = id_tag(p["idToken"], c.action)
        data = meter_values_to_16(p.get("meterValue"))
        if data:
            stop["transactionData"] = data
        return Forward("StopTransaction", stop)
    if not tx.started:
        if tx.id_tag is None:
            return Reply({})  # 1.6 starts a transaction with an id tag; none yet
        tx.started = True
        state.dirty.add(transaction_id)
        start: Payload = {
            "connectorId": tx.evse,
            "idTag": tx.id_tag,
            "meterStart": tx.meter_start_wh if tx.meter_start_wh is not None else 0,
            "timestamp": timestamp,
        }
        if tx.reservation_id is not None:
            start["reservationId"] = tx.reservation_id
        c.memo.update(transaction_id=transaction_id, transaction=tx, state=state)
        return Forward("StartTransaction", start)
    if tx.backend_id is None:
        return Reply({})
    meter_values = meter_values_to_16(p.get("meterValue"))
    if meter_values:
        return Forward(
            "MeterValues",
            {"connectorId": tx.evse, "transactionId": tx.backend_id, "meterValue": meter_values},
        )
    if p.get("triggerReason") == "ChargingStateChanged" and info.get("chargingState"):
        status = CHARGING_STATE_TO_16.get(info["chargingState"], "Preparing")
        state.connector_status[tx.evse] = status
        return Forward(
            "StatusNotification",
            {
                "connectorId": tx.evse,
                "errorCode": "NoError",
                "status": status,
                "timestamp": timestamp,
            },
        )
    return Reply({})


def _meter_stop(p: Payload, tx: Transaction2x) -> int:
    for context in ("Transaction.End", None):
        value = energy_register_wh(p.get("meterValue"), context)
        if value is not None:
            return value
    if tx.last_register_wh is not None:
        return tx.last_register_wh
    return tx.meter_start_wh or 0


def _stop_reason_16(p: Payload, info: Payload) -> str:
    if p.get("triggerReason") == "UnlockCommand":
        return "UnlockCommand"
    return STOP_REASON_TO_16.get(info.get("stoppedReason", "Local"), "Other")


def _transaction_event_answer(p: Payload, memo: dict) -> Payload:
    """A StartTransaction.conf / StopTransaction.conf / other answer as TransactionEventResponse."""
    tx: Transaction2x | None = memo.get("transaction")
    if tx is not None and type(p.get("transactionId")) is int:
        # The id the 1.6 backend assigned names the transaction from now on (1.6 §4.8).
        tx.backend_id = p["transactionId"]
        memo["state"].by_backend_id[tx.backend_id] = memo["transaction_id"]
        memo["state"].dirty.add(memo["transaction_id"])
    info = p.get("idTagInfo")
    return {"idTokenInfo": id_token_info(info)} if isinstance(info, dict) else {}


def _notify_event_to_16(p: Payload, c: Context) -> Outcome:
    """A connector's Problem event (2.0.1 N07/G05) as the 1.6 StatusNotification error it was.

    1.6 reports connector errors in StatusNotification's ``errorCode`` / ``vendorErrorCode``;
    other events have no 1.6 counterpart and are answered in the backend's place.
    """
    for data in p.get("eventData") or []:
        component = data.get("component") or {}
        evse = (component.get("evse") or {}).get("id")
        variable = (data.get("variable") or {}).get("name")
        if component.get("name") not in ("Connector", "EVSE") or variable != "Problem" or not evse:
            continue
        problem = str(data.get("actualValue", "")).lower() == "true"
        status = c.state.connector_status.get(evse, "Available")
        payload: Payload = {
            "connectorId": evse,
            "errorCode": "OtherError" if problem else "NoError",
            "status": status,
            "timestamp": data.get("timestamp") or c.now,
        }
        if problem and data.get("techInfo"):
            payload["info"] = str(data["techInfo"])[:50]
        if problem and data.get("techCode"):
            payload["vendorErrorCode"] = str(data["techCode"])[:50]
        return Forward("StatusNotification", payload)
    return Reply({})


def _meter_values_to_16(p: Payload, _c: Context) -> Outcome:
    meter_values = meter_values_to_16(p.get("meterValue"))
    if not meter_values:
        return Reply({})
    return Forward("MeterValues", {"connectorId": p.get("evseId", 0), "meterValue": meter_values})


def _firmware_to_16(p: Payload, _c: Context) -> Outcome:
    return Forward(
        "FirmwareStatusNotification",
        {"status": FIRMWARE_STATUS_TO_16.get(p.get("status", ""), "Idle")},
    )


def _log_status_to_16(p: Payload, c: Context) -> Outcome:
    if c.state.request_ids.get(p.get("requestId", -1)) == "GetLog":
        # The 1.6 backend asked with the security extension's GetLog: it expects this.
        return Forward("LogStatusNotification", pick(p, "status", "requestId"))
    status = LOG_STATUS_TO_16.get(p.get("status", ""), "Idle")
    return Forward("DiagnosticsStatusNotification", {"status": status})


FROM_2X_TO_16 = {
    "BootNotification": (_boot_to_16, _boot_answer),
    "Heartbeat": (lambda p, c: Forward("Heartbeat", {}), _heartbeat_answer),
    "StatusNotification": (_status_to_16, empty_answer),
    "Authorize": (_authorize_to_16, _authorize_answer_2x),
    "MeterValues": (_meter_values_to_16, empty_answer),
    "DataTransfer": (data_transfer_to_16, data_transfer_answer_16),
    "FirmwareStatusNotification": (_firmware_to_16, empty_answer),
    "LogStatusNotification": (_log_status_to_16, empty_answer),
    "SecurityEventNotification": (_same_action("type", "timestamp", "techInfo"), empty_answer),
    "SignCertificate": (_same_action("csr"), status_only),
    "TransactionEvent": (_transaction_event_to_16, _transaction_event_answer),
    "NotifyEvent": (_notify_event_to_16, empty_answer),
}
