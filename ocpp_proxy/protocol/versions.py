"""OCPP versions the proxy speaks, and the per-version facts the relay needs.

Version differences are data here, side by side, so that no other module branches on a
version string.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ocpp_proxy.protocol.frames import BASE_MESSAGE_TYPES, CALLRESULTERROR, SEND


class OcppVersion(StrEnum):
    """An OCPP version, named as in the config (``"1.6"``, ``"2.0.1"``, ``"2.1"``)."""

    V16 = "1.6"
    V201 = "2.0.1"
    V21 = "2.1"

    @property
    def subprotocol(self) -> str:
        """The WebSocket subprotocol name (OCPP-J 1.6 §3.1.2; OCPP 2.0.1 part 4 §3.1.2)."""
        return "ocpp" + self.value

    @property
    def facts(self) -> VersionFacts:
        """The per-version facts table entry for this version."""
        return VERSION_FACTS[self]

    @classmethod
    def from_subprotocol(cls, name: str) -> OcppVersion | None:
        """Return the version of a subprotocol name such as ``ocpp1.6``, or None if unknown."""
        return _BY_SUBPROTOCOL.get(name.strip().lower())


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What differs between OCPP versions, as far as relaying is concerned.

    ``format_error`` is the CALLERROR code for a malformed frame: OCPP-J 1.6 §4.2.3 names it
    FormationViolation, OCPP 2.0.1 part 4 §4.2.3 renamed it FormatViolation.
    ``unknown_type_error`` answers a frame whose message type id is unknown (2.0.1 adds
    MessageTypeNotSupported; 1.6 has only FormationViolation for it).
    ``transaction_actions`` are the charger-initiated actions that belong to a transaction and
    must never be lost (OCPP 1.6 §4.8-4.10 / 2.0.1 E "transaction-related messages").
    ``charger_assigns_transaction_id`` is False in 1.6, where the CSMS assigns it in
    StartTransaction.conf (OCPP 1.6 §4.8), and True from 2.0.1 on (TransactionEvent).
    ``message_types`` are the message type ids of the version (OCPP 2.1 part 4 §4.1.2 adds
    CALLRESULTERROR and SEND).
    """

    format_error: str
    unknown_type_error: str
    generic_error: str
    not_implemented_error: str
    transaction_actions: frozenset[str]
    charger_assigns_transaction_id: bool
    status_action: str
    schema_package: str
    request_suffix: str
    message_types: frozenset[int] = BASE_MESSAGE_TYPES

    def malformed_code(self, unknown_type: bool) -> str:
        """The CALLERROR code for a malformed frame, or for an unknown message type id."""
        return self.unknown_type_error if unknown_type else self.format_error


_FACTS_16 = VersionFacts(
    format_error="FormationViolation",
    unknown_type_error="FormationViolation",
    generic_error="GenericError",
    not_implemented_error="NotImplemented",
    transaction_actions=frozenset({"StartTransaction", "StopTransaction", "MeterValues"}),
    charger_assigns_transaction_id=False,
    status_action="StatusNotification",
    schema_package="ocpp.v16.schemas",
    request_suffix="",
)
_FACTS_201 = VersionFacts(
    format_error="FormatViolation",
    unknown_type_error="MessageTypeNotSupported",
    generic_error="GenericError",
    not_implemented_error="NotImplemented",
    transaction_actions=frozenset({"TransactionEvent"}),
    charger_assigns_transaction_id=True,
    status_action="StatusNotification",
    schema_package="ocpp.v201.schemas",
    request_suffix="Request",
)

VERSION_FACTS: dict[OcppVersion, VersionFacts] = {
    OcppVersion.V16: _FACTS_16,
    OcppVersion.V201: _FACTS_201,
    # 2.1 relays like 2.0.1; its schemas differ, and it has two more message types.
    OcppVersion.V21: replace(
        _FACTS_201,
        schema_package="ocpp.v21.schemas",
        message_types=BASE_MESSAGE_TYPES | {CALLRESULTERROR, SEND},
    ),
}

_BY_SUBPROTOCOL: dict[str, OcppVersion] = {v.subprotocol: v for v in OcppVersion}

#: Subprotocols the proxy accepts, most recent first.
ALL_SUBPROTOCOLS: tuple[str, ...] = tuple(v.subprotocol for v in reversed(OcppVersion))
