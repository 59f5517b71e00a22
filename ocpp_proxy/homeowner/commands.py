"""The homeowner's commands to a charger: the right OCPP payload for each version.

The one place they are built, for the REST API and Home Assistant alike. Each command takes
plain names (``connector_id``, ``id_tag``, ``transaction_id``, ...) and becomes the action and
payload of the charger's OCPP version: OCPP 1.6 RemoteStartTransaction (§5.11),
GetConfiguration, ... or OCPP 2.0.1/2.1 RequestStartTransaction (F01: ``idToken``,
``remoteStartId``), GetVariables, ... Invalid input raises :class:`CommandInputError` naming
the field; the payload built is also checked against the version's JSON schema.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp_proxy.protocol.schemas import request_schema
from ocpp_proxy.protocol.versions import OcppVersion

Body = dict[str, Any]
Built = tuple[str, dict[str, Any]]

_remote_start_ids = itertools.count(int(time.time()) % 1_000_000_000)


class CommandInputError(ValueError):
    """A command's input is invalid: ``field`` names what is wrong (a path for the schema)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _invalid(field: str, message: str) -> CommandInputError:
    return CommandInputError(field, message)


def _int(body: Body, field: str, *, default: Any = ..., minimum: int = 0) -> int | None:
    value = body.get(field, default)
    if value is ...:
        raise _invalid(field, f"{field} is required")
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _invalid(field, f"expected an integer >= {minimum}")
    return value


def _str(body: Body, field: str, *, default: Any = ..., max_len: int = 500) -> str | None:
    value = body.get(field, default)
    if value is ...:
        raise _invalid(field, f"{field} is required")
    if value is None and default is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _invalid(field, f"expected a non-empty string of at most {max_len} characters")
    return value


def _choice(body: Body, field: str, choices: tuple[str, ...], default: Any = ...) -> str:
    value = body.get(field, default)
    if value is ...:
        raise _invalid(field, f"{field} is required")
    if value not in choices:
        raise _invalid(field, f"expected one of {', '.join(choices)}")
    return value


def _is_16(version: OcppVersion) -> bool:
    return version.value == "1.6"


def start(version: OcppVersion, body: Body) -> Built:
    """Remote start: ``connector_id`` (optional), ``id_tag``."""
    connector = _int(body, "connector_id", default=None, minimum=1)
    id_tag = _str(body, "id_tag", max_len=20 if _is_16(version) else 36)
    if _is_16(version):
        payload: dict[str, Any] = {"idTag": id_tag}
        if connector is not None:
            payload["connectorId"] = connector
        return "RemoteStartTransaction", payload
    payload = {
        "idToken": {"idToken": id_tag, "type": "Central"},
        "remoteStartId": next(_remote_start_ids),
    }
    if connector is not None:
        payload["evseId"] = connector
    return "RequestStartTransaction", payload


def stop(version: OcppVersion, body: Body) -> Built:
    """Remote stop: ``transaction_id`` (as ``/status`` shows it)."""
    value = body.get("transaction_id")
    if _is_16(version):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid("transaction_id", "expected the transaction id (an integer)")
        return "RemoteStopTransaction", {"transactionId": value}
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise _invalid("transaction_id", "expected the transaction id")
    return "RequestStopTransaction", {"transactionId": value}


def unlock(version: OcppVersion, body: Body) -> Built:
    """Unlock a connector: ``connector_id`` (2.x: the EVSE, connector 1 on it)."""
    connector = _int(body, "connector_id", minimum=1)
    if _is_16(version):
        return "UnlockConnector", {"connectorId": connector}
    return "UnlockConnector", {"evseId": connector, "connectorId": 1}


def availability(version: OcppVersion, body: Body) -> Built:
    """Change availability: ``connector_id`` (0: the whole charger), ``operative`` bool."""
    connector = _int(body, "connector_id", default=0)
    operative = body.get("operative")
    if not isinstance(operative, bool):
        raise _invalid("operative", "expected true or false")
    if _is_16(version):
        kind = "Operative" if operative else "Inoperative"
        return "ChangeAvailability", {"connectorId": connector, "type": kind}
    payload: dict[str, Any] = {"operationalStatus": "Operative" if operative else "Inoperative"}
    if connector:
        payload["evse"] = {"id": connector}
    return "ChangeAvailability", payload


def reset(version: OcppVersion, body: Body) -> Built:
    """Reset: ``type`` ``Soft`` (when idle) or ``Hard`` (at once)."""
    kind = _choice(body, "type", ("Soft", "Hard"), default="Soft")
    if _is_16(version):
        return "Reset", {"type": kind}
    return "Reset", {"type": "Immediate" if kind == "Hard" else "OnIdle"}


def _keys(body: Body, *, required: bool) -> list[str]:
    keys = body.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise _invalid("keys", "expected a list of configuration keys")
    if required and not keys:
        raise _invalid("keys", "name at least one Component.Variable")
    return keys


def _component_variable(key: str, field: str) -> dict[str, Any]:
    component, dot, variable = key.partition(".")
    if not dot or not component or not variable:
        raise _invalid(field, f"expected Component.Variable, got {key!r}")
    return {"component": {"name": component}, "variable": {"name": variable}}


def get_configuration(version: OcppVersion, body: Body) -> Built:
    """Read configuration: ``keys`` (1.6 key names, optional; 2.x ``Component.Variable``)."""
    if _is_16(version):
        keys = _keys(body, required=False)
        return "GetConfiguration", ({"key": keys} if keys else {})
    keys = _keys(body, required=True)
    return "GetVariables", {"getVariableData": [_component_variable(k, "keys") for k in keys]}


def change_configuration(version: OcppVersion, body: Body) -> Built:
    """Change configuration: ``key`` (2.x ``Component.Variable``) and ``value``."""
    key = _str(body, "key", max_len=50 if _is_16(version) else 100)
    value = body.get("value")
    if isinstance(value, int | float):
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise _invalid("value", "expected a string")
    if _is_16(version):
        return "ChangeConfiguration", {"key": key, "value": value}
    entry = {"attributeValue": value, **_component_variable(str(key), "key")}
    return "SetVariables", {"setVariableData": [entry]}


def trigger(version: OcppVersion, body: Body) -> Built:
    """Trigger a message: ``message`` (e.g. ``StatusNotification``), ``connector_id`` optional."""
    message = _str(body, "message", max_len=50)
    connector = _int(body, "connector_id", default=None, minimum=1)
    if _is_16(version):
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector is not None:
            payload["connectorId"] = connector
        return "TriggerMessage", payload
    payload = {"requestedMessage": message}
    if connector is not None:
        payload["evse"] = {"id": connector}
    return "TriggerMessage", payload


def reserve(version: OcppVersion, body: Body) -> Built:
    """Reserve: ``connector_id``, ``id_tag``, ``reservation_id``, ``minutes`` (default 30)."""
    connector = _int(body, "connector_id", minimum=0)
    id_tag = _str(body, "id_tag", max_len=20 if _is_16(version) else 36)
    reservation = _int(body, "reservation_id")
    minutes = _int(body, "minutes", default=30, minimum=1)
    expiry = datetime.now(UTC) + timedelta(minutes=minutes or 30)
    expiry_text = expiry.isoformat(timespec="seconds").replace("+00:00", "Z")
    if _is_16(version):
        return "ReserveNow", {
            "connectorId": connector,
            "expiryDate": expiry_text,
            "idTag": id_tag,
            "reservationId": reservation,
        }
    payload: dict[str, Any] = {
        "id": reservation,
        "expiryDateTime": expiry_text,
        "idToken": {"idToken": id_tag, "type": "Central"},
    }
    if connector:
        payload["evseId"] = connector
    return "ReserveNow", payload


def cancel_reservation(version: OcppVersion, body: Body) -> Built:
    """Cancel a reservation: ``reservation_id``."""
    return "CancelReservation", {"reservationId": _int(body, "reservation_id")}


#: The commands by their name in the URL, with the JSON body each takes.
COMMANDS: dict[str, Callable[[OcppVersion, Body], Built]] = {
    "start": start,
    "stop": stop,
    "unlock": unlock,
    "availability": availability,
    "reset": reset,
    "get_configuration": get_configuration,
    "change_configuration": change_configuration,
    "trigger": trigger,
    "reserve": reserve,
    "cancel_reservation": cancel_reservation,
}


def build(command: str, version: OcppVersion, body: Body) -> Built:
    """The (action, payload) of ``command`` for ``version``, checked against its schema.

    Raises:
        KeyError: no command ``command`` (see :data:`COMMANDS`).
        CommandInputError: ``body`` is invalid, or the payload breaks the version's schema.
    """
    action, payload = COMMANDS[command](version, body)
    schema = request_schema(version, action)
    if schema is not None:
        import jsonschema.exceptions  # not at start: see security.schema
        import jsonschema.validators

        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "body"
            raise _invalid(where, f"{action}: {error.message}")
    return action, payload
