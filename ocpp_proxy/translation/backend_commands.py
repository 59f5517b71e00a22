"""Backend-initiated commands: a backend's CALL as the charger's, and the answer back.

Two tables: :data:`FROM_2X_TO_16` (a 2.0.1 / 2.1 backend commanding an OCPP 1.6 charger) and
:data:`FROM_16_TO_2X` (a 1.6 backend commanding a 2.x charging station). Each maps the
backend's action to ``(request, answer)`` as in :mod:`ocpp_proxy.translation.charger_messages`.
A request function raises :class:`~ocpp_proxy.translation.common.Untranslatable` (the backend
gets a CALLERROR NotSupported naming the action and why) rather than guess; the charger never
sees such a command.
"""

from __future__ import annotations

from typing import Any

from ocpp_proxy.translation import config_keys
from ocpp_proxy.translation.common import (
    CARD,
    CENTRAL,
    Forward,
    Outcome,
    Payload,
    Reply,
    Untranslatable,
    data_transfer_answer_2x,
    data_transfer_answer_16,
    data_transfer_to_2x,
    data_transfer_to_16,
    empty_answer,
    id_tag,
    id_tag_info,
    id_token,
    id_token_info,
    pick,
    profile_to_2x,
    profile_to_16,
    purpose_to_2x,
    purpose_to_16,
    schedule_periods_to_2x,
    schedule_periods_to_16,
    status_only,
)
from ocpp_proxy.translation.state import AnswerFn, Context, RemoteStart, RequestFn
from ocpp_proxy.translation.tables import (
    TRIGGER_TO_2X,
    TRIGGER_TO_16,
    UNLOCK_STATUS_TO_2X,
    UNLOCK_STATUS_TO_16,
)


def _status_from(table: dict[str, str], default: str) -> AnswerFn:
    def answer(payload: Payload, _memo: dict) -> Payload:
        return {"status": table.get(payload.get("status", ""), default)}

    return answer


def _one_connector_evse(evse: Any, action: str) -> int | None:
    """The 1.6 connector id of a 2.x EVSE (one connector per EVSE; docs/translation.md)."""
    if not isinstance(evse, dict):
        return None
    if evse.get("connectorId") not in (None, 1):
        raise Untranslatable(
            f"{action} names connector {evse['connectorId']} of an EVSE (1.6: one per id)"
        )
    return evse.get("id")


# == a 2.x backend, an OCPP 1.6 charger =========================================================


def _request_start_to_16(p: Payload, c: Context) -> Outcome:
    tag = id_tag(p.get("idToken"), c.action)
    payload: Payload = {"idTag": tag}
    if p.get("evseId") is not None:
        payload["connectorId"] = p["evseId"]
    if p.get("chargingProfile") is not None:
        profile = p["chargingProfile"]
        if profile.get("chargingProfilePurpose") != "TxProfile":
            raise Untranslatable("a remote start's charging profile must be a TxProfile in 1.6")
        payload["chargingProfile"] = profile_to_16(profile, c.action, None)
    if p.get("groupIdToken") is not None:
        raise Untranslatable("1.6 RemoteStartTransaction has no group id token")
    # Remembered so that the StartTransaction it leads to carries the remoteStartId (F01).
    c.state.remote_starts[tag.lower()] = RemoteStart(
        p.get("remoteStartId", 0), tag, payload.get("connectorId")
    )
    return Forward("RemoteStartTransaction", payload)


def _request_stop_to_16(p: Payload, c: Context) -> Outcome:
    charger_tx = c.state.charger_transaction_id(p.get("transactionId"))
    if charger_tx is None:
        return Reply({"status": "Rejected"})  # no transaction of this charge point by that id
    return Forward("RemoteStopTransaction", {"transactionId": charger_tx})


def _reset_to_16(p: Payload, c: Context) -> Outcome:
    if p.get("evseId") is not None:
        raise Untranslatable("1.6 resets the whole charge point, not one EVSE")
    kind = p.get("type")
    if kind == "OnIdle" and c.state.running_16():
        raise Untranslatable(
            "OnIdle waits for the running transaction to end; a 1.6 charger cannot defer a reset"
        )
    if kind not in ("Immediate", "OnIdle"):
        raise Untranslatable(f"reset type {kind} has no 1.6 counterpart")
    # 1.6 Soft: transactions stopped gracefully, then a reboot: 2.x Immediate (B11); OnIdle
    # with nothing running is the same.
    c.memo["state"] = c.state
    return Forward("Reset", {"type": "Soft"})


def _reset_answer(p: Payload, memo: dict) -> Payload:
    status = p.get("status", "Rejected")
    if status == "Accepted" and "state" in memo:
        memo["state"].boot_reason = "RemoteReset"
    return {"status": "Accepted" if status in ("Accepted", "Scheduled") else "Rejected"}


def _change_availability_to_16(p: Payload, c: Context) -> Outcome:
    connector = _one_connector_evse(p.get("evse"), c.action)
    return Forward(
        "ChangeAvailability", {"connectorId": connector or 0, "type": p.get("operationalStatus")}
    )


def _unlock_to_16(p: Payload, c: Context) -> Outcome:
    if p.get("connectorId") not in (None, 1):
        raise Untranslatable(f"connector {p.get('connectorId')} of an EVSE has no 1.6 connector id")
    return Forward("UnlockConnector", {"connectorId": p.get("evseId")})


def _trigger_to_16(p: Payload, c: Context) -> Outcome:
    requested = TRIGGER_TO_16.get(p.get("requestedMessage", ""))
    if requested is None:
        raise Untranslatable(f"1.6 cannot be asked for {p.get('requestedMessage')}")
    payload: Payload = {"requestedMessage": requested}
    connector = _one_connector_evse(p.get("evse"), c.action)
    if connector is not None:
        payload["connectorId"] = connector
    return Forward("TriggerMessage", payload)


def _reserve_to_16(p: Payload, c: Context) -> Outcome:
    if p.get("connectorType") is not None:
        raise Untranslatable("1.6 reserves a connector by id, not by connector type")
    payload: Payload = {
        "connectorId": p.get("evseId") or 0,
        "expiryDate": p.get("expiryDateTime"),
        "idTag": id_tag(p.get("idToken"), c.action),
        "reservationId": p.get("id"),
    }
    if p.get("groupIdToken") is not None:
        payload["parentIdTag"] = id_tag(p["groupIdToken"], c.action)
    return Forward("ReserveNow", payload)


def _send_local_list_to_16(p: Payload, c: Context) -> Outcome:
    payload: Payload = {"listVersion": p.get("versionNumber"), "updateType": p.get("updateType")}
    entries = []
    for entry in p.get("localAuthorizationList") or []:
        item: Payload = {"idTag": id_tag(entry.get("idToken"), c.action)}
        if entry.get("idTokenInfo") is not None:
            item["idTagInfo"] = id_tag_info(entry["idTokenInfo"])
        entries.append(item)
    if entries:
        payload["localAuthorizationList"] = entries
    return Forward("SendLocalList", payload)


def _list_version_answer_2x(p: Payload, _memo: dict) -> Payload:
    return {"versionNumber": p.get("listVersion", 0)}


def _variable_result(entry: Payload, status: str, value: str | None = None) -> Payload:
    result: Payload = {
        "attributeStatus": status,
        "component": entry.get("component") or {"name": ""},
        "variable": entry.get("variable") or {"name": ""},
    }
    if entry.get("attributeType") is not None:
        result["attributeType"] = entry["attributeType"]
    if value is not None:
        result["attributeValue"] = value
    return result


def _unknown_status(entry: Payload) -> str:
    component = (entry.get("component") or {}).get("name", "")
    return "UnknownVariable" if config_keys.known_component(component) else "UnknownComponent"


def _row_of(entry: Payload) -> config_keys.ConfigKey | None:
    component = entry.get("component") or {}
    variable = entry.get("variable") or {}
    if component.get("evse") is not None or component.get("instance") or variable.get("instance"):
        return None  # the table's variables are station-wide, without instances
    return config_keys.by_variable(str(component.get("name", "")), str(variable.get("name", "")))


def _get_variables_to_16(p: Payload, c: Context) -> Outcome:
    entries = [e for e in p.get("getVariableData") or [] if isinstance(e, dict)]
    keys = []
    for entry in entries:
        row = _row_of(entry)
        if row is not None and entry.get("attributeType", "Actual") == "Actual":
            keys.append(row.key)
    c.memo["entries"] = entries
    if not keys:
        return Reply({"getVariableResult": _variables_answer({}, entries)})
    return Forward("GetConfiguration", {"key": sorted(set(keys))})


def _variables_answer(values: dict[str, str | None], entries: list[Payload]) -> list[Payload]:
    results = []
    for entry in entries:
        row = _row_of(entry)
        if row is None:
            results.append(_variable_result(entry, _unknown_status(entry)))
        elif entry.get("attributeType", "Actual") != "Actual":
            results.append(_variable_result(entry, "NotSupportedAttributeType"))
        elif row.key.lower() in values:
            results.append(_variable_result(entry, "Accepted", values[row.key.lower()] or ""))
        else:
            results.append(_variable_result(entry, "UnknownVariable"))
    return results


def _get_configuration_answer_2x(p: Payload, memo: dict) -> Payload:
    values: dict[str, str | None] = {}
    for item in p.get("configurationKey") or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            values[item["key"].lower()] = item.get("value")
    return {"getVariableResult": _variables_answer(values, memo.get("entries", []))}


def _set_variables_to_16(p: Payload, c: Context) -> Outcome:
    entries = [e for e in p.get("setVariableData") or [] if isinstance(e, dict)]
    mapped = [
        e
        for e in entries
        if _row_of(e) is not None and e.get("attributeType", "Actual") == "Actual"
    ]
    if len(mapped) > 1:
        raise Untranslatable(
            "1.6 ChangeConfiguration sets one key per call; send one variable per SetVariables"
        )
    c.memo["entries"] = entries
    if not mapped:
        return Reply({"setVariableResult": _set_results(entries, None, "")})
    row = _row_of(mapped[0])
    assert row is not None
    if row.readonly:
        return Reply({"setVariableResult": _set_results(entries, row.key, "Rejected")})
    c.memo["key"] = row.key
    return Forward(
        "ChangeConfiguration", {"key": row.key, "value": str(mapped[0].get("attributeValue", ""))}
    )


def _set_results(entries: list[Payload], key: str | None, status: str) -> list[Payload]:
    results = []
    for entry in entries:
        row = _row_of(entry)
        if row is None:
            results.append(_variable_result(entry, _unknown_status(entry)))
        elif entry.get("attributeType", "Actual") != "Actual":
            results.append(_variable_result(entry, "NotSupportedAttributeType"))
        else:
            results.append(_variable_result(entry, status if row.key == key else "UnknownVariable"))
    return results


def _change_configuration_answer_2x(p: Payload, memo: dict) -> Payload:
    status = {
        "Accepted": "Accepted",
        "Rejected": "Rejected",
        "RebootRequired": "RebootRequired",
    }.get(p.get("status", ""), "UnknownVariable")
    return {"setVariableResult": _set_results(memo.get("entries", []), memo.get("key"), status)}


def _base_report_to_16(p: Payload, c: Context) -> Outcome:
    if p.get("reportBase") == "SummaryInventory":
        # Availability and problems per component: 1.6 has no such inventory to read.
        return Reply({"status": "NotSupported"})
    c.memo.update(state=c.state, request_id=p.get("requestId", 0), now=c.now)
    return Forward("GetConfiguration", {})


def _base_report_answer_2x(p: Payload, memo: dict) -> Payload:
    """GetConfiguration.conf as GetBaseReportResponse; the report follows as NotifyReport (B07)."""
    report = []
    for item in p.get("configurationKey") or []:
        row = config_keys.by_key(str(item.get("key", ""))) if isinstance(item, dict) else None
        if row is None:
            continue  # a key without a 2.x variable has no name to be reported under
        attribute: Payload = {
            "type": "Actual",
            "mutability": "ReadOnly" if item.get("readonly") or row.readonly else "ReadWrite",
        }
        if isinstance(item.get("value"), str):
            attribute["value"] = item["value"]
        report.append(
            {
                "component": {"name": row.component},
                "variable": {"name": row.variable},
                "variableAttribute": [attribute],
            }
        )
    if not report:
        return {"status": "EmptyResultSet"}
    memo["state"].follow_ups.append(
        (
            "NotifyReport",
            {
                "requestId": memo.get("request_id", 0),
                "generatedAt": memo.get("now"),
                "seqNo": 0,
                "tbc": False,
                "reportData": report,
            },
        )
    )
    return {"status": "Accepted"}


def _set_profile_to_16(p: Payload, c: Context) -> Outcome:
    profile = p.get("chargingProfile") or {}
    transaction = None
    if profile.get("transactionId") is not None:
        transaction = c.state.charger_transaction_id(profile["transactionId"])
        if transaction is None:
            return Reply({"status": "Rejected"})
    return Forward(
        "SetChargingProfile",
        {
            "connectorId": p.get("evseId", 0),
            "csChargingProfiles": profile_to_16(profile, c.action, transaction),
        },
    )


def _clear_profile_to_16(p: Payload, _c: Context) -> Outcome:
    payload: Payload = {}
    if p.get("chargingProfileId") is not None:
        payload["id"] = p["chargingProfileId"]
    criteria = p.get("chargingProfileCriteria") or {}
    if criteria.get("evseId") is not None:
        payload["connectorId"] = criteria["evseId"]
    if criteria.get("chargingProfilePurpose") is not None:
        purpose = purpose_to_16(criteria["chargingProfilePurpose"])
        if purpose is None:
            raise Untranslatable(
                f"purpose {criteria['chargingProfilePurpose']} has no 1.6 counterpart"
            )
        payload["chargingProfilePurpose"] = purpose
    if criteria.get("stackLevel") is not None:
        payload["stackLevel"] = criteria["stackLevel"]
    return Forward("ClearChargingProfile", payload)


def _composite_to_16(p: Payload, c: Context) -> Outcome:
    c.memo.update(duration=p.get("duration", 0), evse=p.get("evseId", 0), now=c.now)
    return Forward(
        "GetCompositeSchedule",
        {"connectorId": p.get("evseId", 0), **pick(p, "duration", "chargingRateUnit")},
    )


def _composite_answer_2x(p: Payload, memo: dict) -> Payload:
    result = pick(p, "status")
    schedule = p.get("chargingSchedule")
    if p.get("status") == "Accepted" and isinstance(schedule, dict):
        result["schedule"] = {
            "evseId": p.get("connectorId", memo.get("evse", 0)),
            "duration": schedule.get("duration", memo.get("duration", 0)),
            "scheduleStart": p.get("scheduleStart")
            or schedule.get("startSchedule")
            or memo.get("now"),
            "chargingRateUnit": schedule.get("chargingRateUnit", "A"),
            "chargingSchedulePeriod": schedule_periods_to_2x(
                schedule.get("chargingSchedulePeriod")
            ),
        }
    return result


def _get_log_to_16(p: Payload, c: Context) -> Outcome:
    log = p.get("log") or {}
    if p.get("logType") == "SecurityLog":
        # Only the 1.6 security extension has security logs, under 2.x's own GetLog.
        c.state.request_ids[p.get("requestId", 0)] = "GetLog"
        c.memo["signed"] = True
        return Forward("GetLog", pick(p, "log", "logType", "requestId", "retries", "retryInterval"))
    c.state.log_request_id = p.get("requestId")
    payload: Payload = {"location": log.get("remoteLocation", "")}
    payload.update(pick(p, "retries", "retryInterval"))
    if log.get("oldestTimestamp"):
        payload["startTime"] = log["oldestTimestamp"]
    if log.get("latestTimestamp"):
        payload["stopTime"] = log["latestTimestamp"]
    return Forward("GetDiagnostics", payload)


def _get_log_answer_2x(p: Payload, memo: dict) -> Payload:
    if memo.get("signed"):
        return pick(p, "status", "filename")
    # GetDiagnostics.conf has only the file name, absent when there is nothing to upload.
    result: Payload = {"status": "Accepted"}
    if p.get("fileName"):
        result["filename"] = p["fileName"]
    return result


def _update_firmware_to_16(p: Payload, c: Context) -> Outcome:
    firmware = p.get("firmware") or {}
    c.state.firmware_request_id = p.get("requestId")
    if firmware.get("signingCertificate") and firmware.get("signature"):
        c.memo["signed"] = True
        return Forward(
            "SignedUpdateFirmware", pick(p, "retries", "retryInterval", "requestId", "firmware")
        )
    if firmware.get("installDateTime"):
        raise Untranslatable(
            "1.6 UpdateFirmware has no installDateTime (it installs when downloaded)"
        )
    payload: Payload = {
        "location": firmware.get("location", ""),
        "retrieveDate": firmware.get("retrieveDateTime"),
    }
    payload.update(pick(p, "retries", "retryInterval"))
    return Forward("UpdateFirmware", payload)


def _update_firmware_answer_2x(p: Payload, memo: dict) -> Payload:
    if memo.get("signed"):
        return pick(p, "status")
    return {"status": "Accepted"}  # 1.6 UpdateFirmware.conf is empty: the charger took it


def _same(action: str, *fields: str) -> RequestFn:
    def request(p: Payload, _c: Context) -> Outcome:
        return Forward(action, pick(p, *fields))

    return request


FROM_2X_TO_16 = {
    "RequestStartTransaction": (_request_start_to_16, status_only),
    "RequestStopTransaction": (_request_stop_to_16, status_only),
    "Reset": (_reset_to_16, _reset_answer),
    "ChangeAvailability": (_change_availability_to_16, status_only),
    "UnlockConnector": (_unlock_to_16, _status_from(UNLOCK_STATUS_TO_2X, "UnlockFailed")),
    "TriggerMessage": (_trigger_to_16, status_only),
    "ClearCache": (_same("ClearCache"), status_only),
    "DataTransfer": (data_transfer_to_16, data_transfer_answer_2x),
    "ReserveNow": (_reserve_to_16, status_only),
    "CancelReservation": (_same("CancelReservation", "reservationId"), status_only),
    "SendLocalList": (
        _send_local_list_to_16,
        _status_from(
            {"Accepted": "Accepted", "Failed": "Failed", "VersionMismatch": "VersionMismatch"},
            "Failed",
        ),
    ),
    "GetLocalListVersion": (_same("GetLocalListVersion"), _list_version_answer_2x),
    "GetVariables": (_get_variables_to_16, _get_configuration_answer_2x),
    "SetVariables": (_set_variables_to_16, _change_configuration_answer_2x),
    "GetBaseReport": (_base_report_to_16, _base_report_answer_2x),
    "SetChargingProfile": (
        _set_profile_to_16,
        _status_from({"Accepted": "Accepted"}, "Rejected"),
    ),
    "ClearChargingProfile": (_clear_profile_to_16, status_only),
    "GetCompositeSchedule": (_composite_to_16, _composite_answer_2x),
    "GetLog": (_get_log_to_16, _get_log_answer_2x),
    "UpdateFirmware": (_update_firmware_to_16, _update_firmware_answer_2x),
    "CertificateSigned": (_same("CertificateSigned", "certificateChain"), status_only),
    "DeleteCertificate": (_same("DeleteCertificate", "certificateHashData"), status_only),
}


# == a 1.6 backend, a 2.x charging station ======================================================


def _remote_start_to_2x(p: Payload, c: Context) -> Outcome:
    payload: Payload = {
        "idToken": id_token(p.get("idTag", ""), CENTRAL),
        "remoteStartId": c.state.new_request_id("RemoteStartTransaction"),
    }
    if p.get("connectorId"):
        payload["evseId"] = p["connectorId"]
    if p.get("chargingProfile") is not None:
        payload["chargingProfile"] = profile_to_2x(p["chargingProfile"], None)
    return Forward("RequestStartTransaction", payload)


def _remote_stop_to_2x(p: Payload, c: Context) -> Outcome:
    transaction_id = c.state.by_backend_id.get(p.get("transactionId"))  # type: ignore[arg-type]
    if transaction_id is None:
        return Reply({"status": "Rejected"})
    return Forward("RequestStopTransaction", {"transactionId": transaction_id})


def _change_availability_to_2x(p: Payload, _c: Context) -> Outcome:
    payload: Payload = {"operationalStatus": p.get("type")}
    if p.get("connectorId"):
        payload["evse"] = {"id": p["connectorId"]}
    return Forward("ChangeAvailability", payload)


def _trigger_to_2x(p: Payload, _c: Context) -> Outcome:
    requested = TRIGGER_TO_2X.get(p.get("requestedMessage", ""))
    if requested is None:
        raise Untranslatable(f"2.x cannot be asked for {p.get('requestedMessage')}")
    payload: Payload = {"requestedMessage": requested}
    if p.get("connectorId"):
        payload["evse"] = {"id": p["connectorId"]}
    return Forward("TriggerMessage", payload)


def _extended_trigger_to_2x(p: Payload, _c: Context) -> Outcome:
    # The 1.6 security extension's trigger names the 2.x messages, one of them differently.
    requested = p.get("requestedMessage", "")
    payload: Payload = {
        "requestedMessage": {"SignChargePointCertificate": "SignChargingStationCertificate"}.get(
            requested, requested
        )
    }
    if p.get("connectorId"):
        payload["evse"] = {"id": p["connectorId"]}
    return Forward("TriggerMessage", payload)


def _reserve_to_2x(p: Payload, _c: Context) -> Outcome:
    payload: Payload = {
        "id": p.get("reservationId"),
        "expiryDateTime": p.get("expiryDate"),
        "idToken": id_token(p.get("idTag", "")),
    }
    if p.get("connectorId"):
        payload["evseId"] = p["connectorId"]
    if p.get("parentIdTag"):
        payload["groupIdToken"] = id_token(p["parentIdTag"], CENTRAL)
    return Forward("ReserveNow", payload)


def _send_local_list_to_2x(p: Payload, _c: Context) -> Outcome:
    payload: Payload = {"versionNumber": p.get("listVersion"), "updateType": p.get("updateType")}
    entries = []
    for entry in p.get("localAuthorizationList") or []:
        item: Payload = {"idToken": id_token(entry.get("idTag", ""), CARD)}
        if entry.get("idTagInfo") is not None:
            item["idTokenInfo"] = id_token_info(entry["idTagInfo"])
        entries.append(item)
    if entries:
        payload["localAuthorizationList"] = entries
    return Forward("SendLocalList", payload)


def _list_version_answer_16(p: Payload, _memo: dict) -> Payload:
    return {"listVersion": p.get("versionNumber", 0)}


def _get_configuration_to_2x(p: Payload, c: Context) -> Outcome:
    asked = [k for k in p.get("key") or [] if isinstance(k, str)]
    rows = [config_keys.by_key(k) for k in asked] if asked else list(config_keys.CONFIG_KEYS)
    mapped = [row for row in rows if row is not None]
    unknown = [k for k in asked if config_keys.by_key(k) is None]
    c.memo["unknown"] = unknown
    if not mapped:
        return Reply({"configurationKey": [], "unknownKey": unknown})
    data = [{"component": {"name": r.component}, "variable": {"name": r.variable}} for r in mapped]
    return Forward("GetVariables", {"getVariableData": data})


def _get_variables_answer_16(p: Payload, memo: dict) -> Payload:
    known, unknown = [], list(memo.get("unknown", []))
    for result in p.get("getVariableResult") or []:
        row = config_keys.by_variable(
            str((result.get("component") or {}).get("name", "")),
            str((result.get("variable") or {}).get("name", "")),
        )
        if row is None:
            continue
        if result.get("attributeStatus") == "Accepted":
            item: Payload = {"key": row.key, "readonly": row.readonly}
            value = result.get("attributeValue")
            if isinstance(value, str) and len(value) <= 500:
                item["value"] = value
            known.append(item)
        else:
            unknown.append(row.key)
    answer: Payload = {"configurationKey": known}
    if unknown:
        answer["unknownKey"] = unknown
    return answer


def _change_configuration_to_2x(p: Payload, _c: Context) -> Outcome:
    row = config_keys.by_key(str(p.get("key", "")))
    if row is None:
        return Reply({"status": "NotSupported"})
    if row.readonly:
        return Reply({"status": "Rejected"})
    return Forward(
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": str(p.get("value", "")),
                    "component": {"name": row.component},
                    "variable": {"name": row.variable},
                }
            ]
        },
    )


def _set_variables_answer_16(p: Payload, _memo: dict) -> Payload:
    results = p.get("setVariableResult") or [{}]
    status = (
        results[0].get("attributeStatus", "Rejected")
        if isinstance(results[0], dict)
        else "Rejected"
    )
    mapped = {"Accepted": "Accepted", "Rejected": "Rejected", "RebootRequired": "RebootRequired"}
    return {"status": mapped.get(status, "NotSupported")}


def _set_profile_to_2x(p: Payload, c: Context) -> Outcome:
    profile = p.get("csChargingProfiles") or {}
    transaction = None
    if profile.get("transactionId") is not None:
        transaction = c.state.by_backend_id.get(profile["transactionId"])
        if transaction is None:
            return Reply({"status": "Rejected"})
    return Forward(
        "SetChargingProfile",
        {"evseId": p.get("connectorId", 0), "chargingProfile": profile_to_2x(profile, transaction)},
    )


def _clear_profile_to_2x(p: Payload, _c: Context) -> Outcome:
    payload: Payload = {}
    if p.get("id") is not None:
        payload["chargingProfileId"] = p["id"]
    criteria: Payload = {}
    if p.get("connectorId") is not None:
        criteria["evseId"] = p["connectorId"]
    if p.get("chargingProfilePurpose") is not None:
        criteria["chargingProfilePurpose"] = purpose_to_2x(p["chargingProfilePurpose"])
    if p.get("stackLevel") is not None:
        criteria["stackLevel"] = p["stackLevel"]
    if criteria:
        payload["chargingProfileCriteria"] = criteria
    return Forward("ClearChargingProfile", payload)


def _composite_to_2x(p: Payload, c: Context) -> Outcome:
    c.memo["connector"] = p.get("connectorId", 0)
    payload: Payload = {"duration": p.get("duration", 0), "evseId": p.get("connectorId", 0)}
    payload.update(pick(p, "chargingRateUnit"))
    return Forward("GetCompositeSchedule", payload)


def _composite_answer_16(p: Payload, memo: dict) -> Payload:
    result = pick(p, "status")
    schedule = p.get("schedule")
    if isinstance(schedule, dict):
        result["connectorId"] = schedule.get("evseId", memo.get("connector", 0))
        if schedule.get("scheduleStart"):
            result["scheduleStart"] = schedule["scheduleStart"]
        result["chargingSchedule"] = {
            "duration": schedule.get("duration", 0),
            "chargingRateUnit": schedule.get("chargingRateUnit", "A"),
            "chargingSchedulePeriod": schedule_periods_to_16(
                schedule.get("chargingSchedulePeriod"), "GetCompositeSchedule"
            ),
        }
        if schedule.get("scheduleStart"):
            result["chargingSchedule"]["startSchedule"] = schedule["scheduleStart"]
    return result


def _get_diagnostics_to_2x(p: Payload, c: Context) -> Outcome:
    log: Payload = {"remoteLocation": p.get("location", "")}
    if p.get("startTime"):
        log["oldestTimestamp"] = p["startTime"]
    if p.get("stopTime"):
        log["latestTimestamp"] = p["stopTime"]
    payload: Payload = {
        "logType": "DiagnosticsLog",
        "requestId": c.state.new_request_id("GetDiagnostics"),
        "log": log,
    }
    payload.update(pick(p, "retries", "retryInterval"))
    return Forward("GetLog", payload)


def _get_diagnostics_answer_16(p: Payload, _memo: dict) -> Payload:
    return {"fileName": p["filename"]} if p.get("filename") else {}


def _get_log_to_2x(p: Payload, c: Context) -> Outcome:
    c.state.request_ids[p.get("requestId", 0)] = "GetLog"
    return Forward("GetLog", pick(p, "log", "logType", "requestId", "retries", "retryInterval"))


def _update_firmware_to_2x(p: Payload, c: Context) -> Outcome:
    request_id = c.state.new_request_id("UpdateFirmware")
    firmware: Payload = {
        "location": p.get("location", ""),
        "retrieveDateTime": p.get("retrieveDate"),
    }
    payload: Payload = {"requestId": request_id, "firmware": firmware}
    payload.update(pick(p, "retries", "retryInterval"))
    return Forward("UpdateFirmware", payload)


def _install_certificate_to_2x(p: Payload, _c: Context) -> Outcome:
    kind = {"CentralSystemRootCertificate": "CSMSRootCertificate"}.get(
        p.get("certificateType", ""), p.get("certificateType")
    )
    return Forward(
        "InstallCertificate", {"certificateType": kind, "certificate": p.get("certificate", "")}
    )


FROM_16_TO_2X = {
    "RemoteStartTransaction": (_remote_start_to_2x, status_only),
    "RemoteStopTransaction": (_remote_stop_to_2x, status_only),
    "Reset": (lambda p, c: Forward("Reset", {"type": "Immediate"}), _reset_answer),
    "ChangeAvailability": (_change_availability_to_2x, status_only),
    "UnlockConnector": (
        lambda p, c: Forward(
            "UnlockConnector", {"evseId": p.get("connectorId", 0), "connectorId": 1}
        ),
        _status_from(UNLOCK_STATUS_TO_16, "UnlockFailed"),
    ),
    "TriggerMessage": (_trigger_to_2x, status_only),
    "ExtendedTriggerMessage": (_extended_trigger_to_2x, status_only),
    "ClearCache": (lambda p, c: Forward("ClearCache", {}), status_only),
    "DataTransfer": (data_transfer_to_2x, data_transfer_answer_16),
    "ReserveNow": (_reserve_to_2x, status_only),
    "CancelReservation": (
        lambda p, c: Forward("CancelReservation", pick(p, "reservationId")),
        status_only,
    ),
    "SendLocalList": (_send_local_list_to_2x, status_only),
    "GetLocalListVersion": (
        lambda p, c: Forward("GetLocalListVersion", {}),
        _list_version_answer_16,
    ),
    "GetConfiguration": (_get_configuration_to_2x, _get_variables_answer_16),
    "ChangeConfiguration": (_change_configuration_to_2x, _set_variables_answer_16),
    "SetChargingProfile": (_set_profile_to_2x, status_only),
    "ClearChargingProfile": (_clear_profile_to_2x, status_only),
    "GetCompositeSchedule": (_composite_to_2x, _composite_answer_16),
    "GetDiagnostics": (_get_diagnostics_to_2x, _get_diagnostics_answer_16),
    "UpdateFirmware": (_update_firmware_to_2x, empty_answer),
    # The 1.6 security extension's commands (2.x's under the same names).
    "GetLog": (_get_log_to_2x, lambda p, m: pick(p, "status", "filename")),
    "SignedUpdateFirmware": (
        lambda p, c: Forward(
            "UpdateFirmware", pick(p, "retries", "retryInterval", "requestId", "firmware")
        ),
        status_only,
    ),
    "CertificateSigned": (_same("CertificateSigned", "certificateChain"), status_only),
    "DeleteCertificate": (_same("DeleteCertificate", "certificateHashData"), status_only),
    "InstallCertificate": (_install_certificate_to_2x, status_only),
}
