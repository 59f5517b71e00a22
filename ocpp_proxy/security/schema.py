"""Payload validation against the OCPP JSON schemas the ``ocpp`` library ships.

A violation is reported with the CALLERROR code OCPP-J defines for it (OCPP-J 1.6 §4.2.3;
OCPP 2.0.1 part 4 §4.2.3): a wrong JSON type is a TypeConstraintViolation, a missing required
field (or too few / too many items) an Occurence(1.6)/Occurrence(2.x)ConstraintViolation, a
value outside its enum, length or range a PropertyConstraintViolation, and anything else
(an unknown field, say) a FormationViolation (1.6) / FormatViolation (2.x).

Validators are built once per (version, action) and kept; actions without a schema are not
validated at all (the proxy is transparent to vendor extensions). A payload is first checked
by ``fastjsonschema``'s compiled validator (about 8 µs for a 1.6 MeterValues, 15 µs for a 2.x
TransactionEvent, against 150-320 µs with ``jsonschema``); only one it refuses goes through
``jsonschema``, which has the last word (the exact decimals of ``multipleOf``) and names the
violation.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastjsonschema

from ocpp_proxy.protocol.schemas import actions, request_schema
from ocpp_proxy.protocol.versions import OcppVersion

if TYPE_CHECKING:
    import jsonschema.exceptions
    import jsonschema.protocols

_OCCURRENCE = frozenset({"required", "minItems", "maxItems", "minProperties", "maxProperties"})
_PROPERTY = frozenset(
    {
        "enum",
        "const",
        "maxLength",
        "minLength",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "multipleOf",
        "pattern",
        "format",
        "uniqueItems",
    }
)
#: The longest description a CALLERROR gets (the value in a message may be long).
MAX_DESCRIPTION = 300


@dataclass(frozen=True, slots=True)
class Violation:
    """The first schema violation of a payload: its CALLERROR code and a description."""

    code: str
    description: str


def check_request(version: OcppVersion, action: str, payload: dict[str, Any]) -> Violation | None:
    """Validate a CALL payload of ``action`` against ``version``'s request schema.

    In: the OCPP version, the action name, the payload. Out: None when it conforms or the
    action has no schema, else the :class:`Violation` (code per OCPP-J 1.6 §4.2.3 / OCPP 2.0.1
    part 4 §4.2.3, description naming the field and the rule).
    """
    # Only names with a schema reach the caches: names from the wire may be anything.
    if action not in actions(version):
        return None
    if not payload:
        # An empty payload (every Heartbeat) is valid or not once and for all per action.
        return _empty_payload_violation(version, action)
    return _check(version, action, payload)


@functools.cache
def _empty_payload_violation(version: OcppVersion, action: str) -> Violation | None:
    return _check(version, action, {})


def _check(version: OcppVersion, action: str, payload: dict[str, Any]) -> Violation | None:
    fast = _fast_validator(version, action)
    if fast is not None:
        try:
            fast(payload)
        except fastjsonschema.JsonSchemaException:
            pass  # maybe a float's multipleOf: jsonschema decides below, and names the fault
        else:
            return None
    validator = _validator(version, action)
    if validator is None:
        return None
    if validator.is_valid(payload):
        return None
    if _uses_decimals(version, action):
        # The schema's multipleOf 0.1 fails on binary floats (21.4 is 21.39999...): check
        # again on exact decimals, as the ocpp library does for OCPP 1.6.
        payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
        validator = _validator(version, action, decimals=True)
        assert validator is not None
        if validator.is_valid(payload):
            return None
    from jsonschema.exceptions import best_match

    return _violation(version, action, best_match(validator.iter_errors(payload)))


def _violation(
    version: OcppVersion, action: str, error: jsonschema.exceptions.ValidationError
) -> Violation:
    kind = error.validator
    if kind == "type":
        code = "TypeConstraintViolation"
    elif kind in _OCCURRENCE:
        code = (
            "OccurenceConstraintViolation"  # sic: OCPP-J 1.6 §4.2.3 spells it so
            if version is OcppVersion.V16
            else "OccurrenceConstraintViolation"
        )
    elif kind in _PROPERTY:
        code = "PropertyConstraintViolation"
    else:
        code = version.facts.format_error
    where = "/".join(str(part) for part in error.absolute_path) or "payload"
    description = f"{action} {where}: {error.message}"
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 3] + "..."
    return Violation(code, description)


@functools.cache
def _uses_decimals(version: OcppVersion, action: str) -> bool:
    schema = request_schema(version, action)
    return schema is not None and '"multipleOf"' in json.dumps(schema)


@functools.cache
def _validator(
    version: OcppVersion, action: str, *, decimals: bool = False
) -> jsonschema.protocols.Validator | None:
    schema = request_schema(version, action)
    if schema is None:
        return None
    # jsonschema (about 3 MB with its dependencies) is imported by the first payload the
    # compiled check refuses, not at start: most processes never need it. The import takes
    # about 40 ms once, after that charger frame went on (the check follows the forward).
    import jsonschema.validators

    if decimals:
        schema = json.loads(json.dumps(schema), parse_float=decimal.Decimal)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
    # Resolving "$ref" on every use is half the cost of checking a 2.x TransactionEvent
    # (~0.3 ms -> ~0.17 ms): the references are followed once, here. A recursive definition
    # keeps its references.
    with contextlib.suppress(RecursionError):
        schema = _inline_definitions(schema)
    return cls(schema)


@functools.cache
def _fast_validator(version: OcppVersion, action: str) -> Any:
    """The compiled validator of ``action``'s request schema, or None (none, or not compilable).

    Formats are not checked and defaults not filled in: as ``jsonschema`` does by default, and
    the payload is the frame's, which is never changed.
    """
    schema = request_schema(version, action)
    if schema is None:
        return None
    with contextlib.suppress(RecursionError):
        schema = _inline_definitions(schema)
    try:
        return fastjsonschema.compile(
            schema, use_default=False, use_formats=False, detailed_exceptions=False
        )
    except fastjsonschema.JsonSchemaDefinitionException:
        return None  # jsonschema alone checks it


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``{"$ref": "#/definitions/X"}`` replaced by definition X.

    The OCPP 2.x schemas (part 3) reference only their own ``definitions``, never recursively;
    a recursive one raises RecursionError (past 64 levels).
    """
    definitions = schema.get("definitions", {})
    prefix = "#/definitions/"

    def walk(node: Any, depth: int) -> Any:
        if depth > 64:
            raise RecursionError("recursive $ref")
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and len(node) == 1:
                return walk(definitions[ref.removeprefix(prefix)], depth + 1)
            return {k: walk(v, depth + 1) for k, v in node.items() if k != "definitions"}
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema, 0)
    return inlined
