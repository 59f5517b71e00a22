"""The proxy's small local CSMS: answers a charger when no backend does, refuses commands.

When no backend is connected, or the primary backend does not answer in time, the charger must
still get a CALLRESULT (OCPP-J 1.6 §4.2.2; OCPP 2.0.1 part 4 §4.2.2), or it stalls, retries, or
stops charging. The answers are generated from the response JSON schemas of the ``ocpp``
library, so every action of every version is covered, including all of OCPP 2.1:

* the *minimal instance* of a schema holds only the required properties; an enum takes
  ``"Accepted"`` if it has it, else its first value; a ``date-time`` string is the current
  time; another string is empty (padded to ``minLength``); a number is 0 (or the bounds'
  nearest value); an array has ``minItems`` items; ``$ref`` is resolved within the schema;
* :data:`_OVERRIDES` then sets the few fields whose meaning matters (boot accepted with our
  heartbeat interval, transaction id, authorisation status, vendor extensions unknown).

Nothing is computed at import. Per (version, action) a template is built on first use and
cached; each call only copies it and fills in the time and the call's parameters. Templates
are built for actions that have a response schema only, so the cache stays bounded whatever
action names a charger sends.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from ocpp_proxy.protocol.schemas import response_schema
from ocpp_proxy.protocol.versions import OcppVersion

_ACCEPTED = "Accepted"
_REJECTED = "Rejected"


class _Param(Enum):
    """A value that is known only per call; stands in a template until it is filled."""

    NOW = "now"
    HEARTBEAT_INTERVAL = "heartbeat_interval_s"
    TRANSACTION_ID = "transaction_id"


@dataclass(frozen=True, slots=True)
class _Echo:
    """The request's top-level field ``name``, or ``fallback`` if absent or of another type."""

    name: str
    fallback: Any = None


@dataclass(frozen=True, slots=True)
class _Override:
    """Fields set in the local answer to ``action`` of ``versions``.

    ``values`` maps a dotted path in the response payload to a constant, a :class:`_Param` or
    an :class:`_Echo`. Missing objects on the path are created as minimal instances, so a path
    may reach into an optional property; a number on the path indexes an array item that the
    minimal instance has (``minItems``). With ``when_request_has`` set, the override applies
    only when the request payload has that top-level field.
    """

    versions: tuple[OcppVersion, ...]
    action: str
    values: Mapping[str, Any]
    when_request_has: str | None = None


_V16 = (OcppVersion.V16,)
_V2X = (OcppVersion.V201, OcppVersion.V21)
_ALL = tuple(OcppVersion)

#: The semantic overrides of the local CSMS. Everything else is the schema's minimal instance.
_OVERRIDES: tuple[_Override, ...] = (
    # OCPP 1.6 §4.2; OCPP 2.0.1 part 2 B01: registration accepted, heartbeat interval (s).
    _Override(
        _ALL,
        "BootNotification",
        {"status": _ACCEPTED, "interval": _Param.HEARTBEAT_INTERVAL, "currentTime": _Param.NOW},
    ),
    # OCPP 1.6 §4.6; OCPP 2.0.1 part 2 G02.
    _Override(_ALL, "Heartbeat", {"currentTime": _Param.NOW}),
    # OCPP 1.6 §4.1: the local CSMS lets every idTag charge.
    _Override(_V16, "Authorize", {"idTagInfo.status": _ACCEPTED}),
    # OCPP 1.6 §4.8: the CSMS assigns the transaction id (the proxy hands it in).
    _Override(
        _V16,
        "StartTransaction",
        {"idTagInfo.status": _ACCEPTED, "transactionId": _Param.TRANSACTION_ID},
    ),
    # OCPP 1.6 §4.10: idTagInfo only when the request carried an idTag.
    _Override(_V16, "StopTransaction", {"idTagInfo.status": _ACCEPTED}, when_request_has="idTag"),
    # OCPP 2.0.1 part 2 C01.
    _Override(_V2X, "Authorize", {"idTokenInfo.status": _ACCEPTED}),
    # OCPP 2.0.1 part 2 E: idTokenInfo only when the request carried an idToken.
    _Override(
        _V2X, "TransactionEvent", {"idTokenInfo.status": _ACCEPTED}, when_request_has="idToken"
    ),
    # OCPP 1.6 §4.3; OCPP 2.0.1 part 2 P02: the local CSMS knows no vendor extensions.
    _Override(_ALL, "DataTransfer", {"status": "UnknownVendorId"}),
    # The local CSMS cannot do what "Accepted" would promise for these:
    # OCPP 1.6 security whitepaper / 2.0.1 part 2 A02: no CertificateSigned will follow.
    _Override(_ALL, "SignCertificate", {"status": _REJECTED}),
    # OCPP 2.0.1 part 2 M01/M02: no certificate for the EV (exiResponse would be empty).
    _Override(_V2X, "Get15118EVCertificate", {"status": "Failed"}),
    # OCPP 2.0.1 part 2 M06: no OCSP response (ocspResult may be omitted only if not Accepted).
    _Override(_V2X, "GetCertificateStatus", {"status": "Failed"}),
    # OCPP 2.1 GetCertificateChainStatus: the schema's first enum value would say "Good".
    _Override(
        (OcppVersion.V21,), "GetCertificateChainStatus", {"certificateStatus.0.status": "Failed"}
    ),
    # OCPP 2.1: a VAT number is not validated locally; the response names the number asked for.
    _Override(
        (OcppVersion.V21,),
        "VatNumberValidation",
        {"status": _REJECTED, "vatNumber": _Echo("vatNumber")},
    ),
)


def local_answer(
    version: OcppVersion,
    action: str,
    payload: dict[str, Any],
    *,
    transaction_id: int | None = None,
    heartbeat_interval_s: int = 300,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """Return the local CSMS's CALLRESULT payload for a charger-initiated CALL.

    In: the OCPP version of the connection, the CALL's action and payload (OCPP-J 1.6 §4.2.1;
    OCPP 2.0.1 part 4 §4.2.1); ``transaction_id`` for 1.6 StartTransaction, where the CSMS
    assigns it (OCPP 1.6 §4.8; required for that action); ``heartbeat_interval_s`` for the
    BootNotification answer (OCPP 1.6 §4.2; OCPP 2.0.1 part 2 B01); ``now`` the CSMS time
    (default: the current time; a naive datetime is taken as UTC).

    Out: a new dict that validates against the version's response schema of ``action``: the
    schema's minimal instance with the overrides of :data:`_OVERRIDES` (boot Accepted, every
    idTag/idToken Accepted, DataTransfer UnknownVendorId, ...), date-times as ``now`` in UTC,
    ISO 8601 with milliseconds and ``Z``. None if the version has no response schema for
    ``action``: the caller then answers with a NotImplemented CALLERROR (OCPP-J 1.6 §4.2.3;
    OCPP 2.0.1 part 4 §4.2.3).

    Raises ValueError if ``action`` needs ``transaction_id`` and it is None.
    """
    if response_schema(version, action) is None:
        return None
    template = _answer_template(version, action)
    if _Param.TRANSACTION_ID in template.params and transaction_id is None:
        raise ValueError(f"{action} ({version}) needs a transaction_id")
    answer = dict(template.base)
    for request_field, patch in template.conditional:
        if request_field in payload:
            answer.update(patch)
    params = {
        _Param.NOW: _timestamp(now),
        _Param.HEARTBEAT_INTERVAL: heartbeat_interval_s,
        _Param.TRANSACTION_ID: transaction_id,
    }
    filled: dict[str, Any] = _fill(answer, params, payload)
    return filled


def refusal(version: OcppVersion, action: str) -> dict[str, Any] | None:
    """Return a CALLRESULT payload that refuses the backend command ``action``, if one exists.

    In: the OCPP version and the action of a CSMS-initiated CALL (OCPP 1.6 chapter 5; OCPP
    2.0.1 part 2, e.g. F01 RequestStartTransaction) that the proxy does not pass on to the
    charger.

    Out: when the action's response schema has a required ``status`` whose enum contains
    ``"Rejected"``, a new schema-valid dict with ``status: "Rejected"`` and any other required
    fields minimal (e.g. 1.6 RemoteStartTransaction / ChangeConfiguration and 2.x
    RequestStartTransaction give ``{"status": "Rejected"}``). Otherwise None, e.g. for 1.6
    GetConfiguration (no status) or UnlockConnector (no Rejected): the caller then answers with
    a CALLERROR (OCPP-J 1.6 §4.2.3; OCPP 2.0.1 part 4 §4.2.3).
    """
    if response_schema(version, action) is None:
        return None
    template = _refusal_template(version, action)
    if template is None:
        return None
    filled: dict[str, Any] = _fill(template, {_Param.NOW: _timestamp(None)}, {})
    return filled


# --- templates -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    """A local answer with its per-call parts left open.

    ``base`` is the answer in every case; each ``(request_field, patch)`` of ``conditional``
    is merged into it (top-level keys) when the request has ``request_field``. Both may hold
    :class:`_Param` and :class:`_Echo` markers; ``params`` lists the :class:`_Param` used.
    """

    base: dict[str, Any]
    conditional: tuple[tuple[str, dict[str, Any]], ...] = ()
    params: frozenset[_Param] = field(default=frozenset())


@functools.cache
def _answer_template(version: OcppVersion, action: str) -> _Template:
    """Build the local answer template; only called for actions with a response schema."""
    schema = response_schema(version, action)
    assert schema is not None
    base = _minimal(schema, schema)
    conditional: list[tuple[str, dict[str, Any]]] = []
    for override in _OVERRIDES:
        if version not in override.versions or override.action != action:
            continue
        target: dict[str, Any] = base if override.when_request_has is None else {}
        for path, value in override.values.items():
            _put(target, schema, path.split("."), value)
        if override.when_request_has is not None:
            conditional.append((override.when_request_has, target))
    params = _params_in(base) | frozenset().union(*(_params_in(p) for _, p in conditional))
    return _Template(base, tuple(conditional), params)


@functools.cache
def _refusal_template(version: OcppVersion, action: str) -> dict[str, Any] | None:
    """Build the refusal template, or None if the response has no required Rejected status."""
    schema = response_schema(version, action)
    assert schema is not None
    root = _resolve(schema, schema)
    if "status" not in root.get("required", ()):
        return None
    status = _resolve(root.get("properties", {}).get("status", {}), schema)
    if _REJECTED not in status.get("enum", ()):
        return None
    base: dict[str, Any] = _minimal(schema, schema)
    base["status"] = _REJECTED
    return base


# --- minimal instances -----------------------------------------------------------------------


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (a JSON pointer within ``root``, e.g. ``#/definitions/X``)."""
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#") or ref in seen:
            raise ValueError(f"unsupported or cyclic $ref {ref!r}")
        seen.add(ref)
        target: Any = root
        for part in ref[1:].split("/")[1:]:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _type_of(node: dict[str, Any]) -> str:
    declared = node.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        declared = non_null[0] if non_null else "null"
    if declared is not None:
        return str(declared)
    if "properties" in node or "required" in node:
        return "object"
    if "items" in node:
        return "array"
    return "null"


def _minimal(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """Return the minimal instance of schema ``node`` (date-times as ``_Param.NOW``)."""
    node = _resolve(node, root)
    if "const" in node:
        return copy.deepcopy(node["const"])
    if "enum" in node:
        choices = node["enum"]
        return _ACCEPTED if _ACCEPTED in choices else copy.deepcopy(choices[0])
    kind = _type_of(node)
    if kind == "object":
        properties = node.get("properties", {})
        return {name: _minimal(properties.get(name, {}), root) for name in node.get("required", ())}
    if kind == "array":
        return [_minimal(_item_schema(node, i), root) for i in range(node.get("minItems", 0))]
    if kind == "string":
        if node.get("format") == "date-time":
            return _Param.NOW
        return "0" * node.get("minLength", 0)
    if kind in ("integer", "number"):
        return _minimal_number(node, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


def _item_schema(node: dict[str, Any], index: int) -> dict[str, Any]:
    items = node.get("items", {})
    if isinstance(items, list):
        if index < len(items):
            return dict(items[index])
        extra = node.get("additionalItems", {})
        return extra if isinstance(extra, dict) else {}
    return dict(items)


def _minimal_number(node: dict[str, Any], *, integer: bool) -> int | float:
    """Return 0, or the nearest value to 0 within the bounds (as an int when integral)."""
    value: float = 0
    low = node.get("minimum")
    exclusive_low = node.get("exclusiveMinimum")
    if isinstance(exclusive_low, bool):  # draft-04: a flag on minimum
        exclusive_low = low if exclusive_low else None
    high = node.get("maximum")
    if low is not None and value < low:
        value = low
    if exclusive_low is not None and value <= exclusive_low:
        value = math.floor(exclusive_low) + 1 if integer else exclusive_low + 1
    if high is not None and value > high:
        value = high
    step = node.get("multipleOf")
    if step and value:
        value = math.ceil(value / step) * step
    if integer:
        return math.ceil(value)
    return int(value) if float(value).is_integer() else value


def _put(target: dict[str, Any], schema: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` in ``target``, creating missing objects as minimal instances."""
    node = _resolve(schema, schema)
    for name in path[:-1]:
        if name.isdigit():  # an item that minItems made; the path cannot create items
            node = _resolve(_item_schema(node, int(name)), schema)
            target = target[int(name)]
            continue
        node = _resolve(node["properties"][name], schema)
        if name not in target:
            target[name] = _minimal(node, schema)
        target = target[name]
    last = path[-1]
    leaf = _resolve(node["properties"][last], schema)  # KeyError: the table names no field
    if isinstance(value, _Echo):
        value = replace(value, fallback=target.get(last, _minimal(leaf, schema)))
    target[last] = value


# --- per call --------------------------------------------------------------------------------


def _params_in(value: Any) -> frozenset[_Param]:
    if isinstance(value, _Param):
        return frozenset((value,))
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return frozenset().union(*(_params_in(item) for item in value))
    return frozenset()


def _fill(value: Any, params: Mapping[_Param, Any], request: Mapping[str, Any]) -> Any:
    """Return a deep copy of ``value`` with its markers replaced by this call's values."""
    if isinstance(value, dict):
        return {key: _fill(item, params, request) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, params, request) for item in value]
    if isinstance(value, _Param):
        return params[value]
    if isinstance(value, _Echo):
        echoed = request.get(value.name, value.fallback)
        return echoed if type(echoed) is type(value.fallback) else value.fallback
    return value


def _timestamp(now: datetime | None) -> str:
    """Format ``now`` (default: the current time) as UTC ISO 8601 with milliseconds and Z."""
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
