"""What the relay knows of OCPP payloads, as data: one table of the charger's messages.

For every action a charger sends, :data:`CHARGER_MESSAGES` says whether it is a transaction
message (kept in the outbox until every backend confirmed it: OCPP 1.6 §4.8-4.10, 2.0.1 E
"transaction-related messages"), whether its last copy is replayed to a backend that comes up
late (BootNotification, StatusNotification per connector), and what goes first when a backend's
queue is over its bound. The field accessors below read the few payload fields the relay needs,
per version, so that no other module digs in payloads for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ocpp_proxy.protocol.versions import OcppVersion


class Keep(StrEnum):
    """How the relay keeps a charger message for backends that have not got it."""

    #: A transaction message: queued for every backend, in the outbox until it confirms.
    TRANSACTION = "transaction"
    #: The charger's state (boot, connector status): the last one is replayed to a late backend.
    STATE = "state"
    #: Anything else: offered to backends that are up or opening, never kept.
    NONE = "none"


@dataclass(frozen=True, slots=True)
class MessageRule:
    """How the relay treats one kind of charger message.

    ``keep`` says what is kept for a backend that has not got it; ``shed_first`` marks the
    messages dropped first when a backend's queue is over its bound (readings that later
    readings make up for), the others go only when no such message is left.
    """

    keep: Keep
    shed_first: bool = False


_TRANSACTION = MessageRule(Keep.TRANSACTION)
_READING = MessageRule(Keep.TRANSACTION, shed_first=True)
_STATE = MessageRule(Keep.STATE)
_OTHER = MessageRule(Keep.NONE)

#: Per OCPP version family, the actions that are not :data:`_OTHER`.
CHARGER_MESSAGES: Mapping[str, Mapping[str, MessageRule]] = {
    # OCPP 1.6 §4.8 StartTransaction, §4.7 MeterValues, §4.10 StopTransaction.
    "1.6": {
        "StartTransaction": _TRANSACTION,
        "StopTransaction": _TRANSACTION,
        "MeterValues": _READING,  # only with a transactionId (see charger_message_rule)
        "BootNotification": _STATE,
        "StatusNotification": _STATE,
    },
    # OCPP 2.0.1 E01-E07 TransactionEvent (Updated events are readings), B01, G01.
    "2.x": {
        "TransactionEvent": _TRANSACTION,
        "BootNotification": _STATE,
        "StatusNotification": _STATE,
    },
}


def _family(version: OcppVersion) -> str:
    return "1.6" if version is OcppVersion.V16 else "2.x"


def charger_message_rule(
    version: OcppVersion, action: str, payload: Mapping[str, Any]
) -> MessageRule:
    """The rule for a charger CALL ``action`` with ``payload`` in ``version``.

    A 1.6 MeterValues without a transactionId is plain telemetry (OCPP 1.6 §4.7); a 2.x
    TransactionEvent ``Updated`` is a reading that may be shed before Started and Ended.
    """
    rule = CHARGER_MESSAGES[_family(version)].get(action, _OTHER)
    if action == "MeterValues" and transaction_id_16(payload) is None:
        return _OTHER
    if action == "TransactionEvent" and payload.get("eventType") == "Updated":
        return _READING
    return rule


def transaction_id_16(payload: Mapping[str, Any]) -> int | None:
    """The OCPP 1.6 ``transactionId`` a payload names, if it is one the proxy could have given.

    Past 64 bits it is none the proxy gave (and SQLite could not store it).
    """
    named = payload.get("transactionId")
    return named if type(named) is int and -(2**63) <= named < 2**63 else None


def state_key(action: str, payload: Mapping[str, Any]) -> str | None:
    """Under which key the last copy of a state message is kept (one per connector).

    ``boot`` for a BootNotification, ``status:<evse>/<connector>`` for a StatusNotification
    (OCPP 1.6 §4.9 names a connector, 2.0.1 G01 an EVSE and connector); None for the rest.
    """
    if action == "BootNotification":
        return "boot"
    if action == "StatusNotification":
        return f"status:{connector_key(payload)}"
    return None


def connector_key(payload: Mapping[str, Any]) -> str:
    """``<connector>`` (1.6) or ``<evse>/<connector>`` (2.x) of a StatusNotification."""
    evse_id, connector_id = payload.get("evseId"), payload.get("connectorId")
    return str(connector_id) if evse_id is None else f"{evse_id}/{connector_id}"


def connector_status(payload: Mapping[str, Any]) -> Any:
    """The status a StatusNotification reports (1.6 ``status``, 2.x ``connectorStatus``)."""
    return payload.get("status") or payload.get("connectorStatus")


def started_transaction(
    action: str, payload: Mapping[str, Any], transaction_id: int | None
) -> str | None:
    """The key of the session a start message begins: the 1.6 id, or 2.x TransactionEvent's."""
    if action == "StartTransaction" and transaction_id is not None:
        return str(transaction_id)
    if action == "TransactionEvent" and payload.get("eventType") == "Started":
        info = payload.get("transactionInfo")
        named = info.get("transactionId") if isinstance(info, dict) else None
        return named if isinstance(named, str) else None
    return None


def session_label(
    version: OcppVersion, action: str, payload: Mapping[str, Any], transaction_id: int | None
) -> str:
    """The transaction a message belongs to, for log lines: ``transaction 42`` or ``-``."""
    if transaction_id is not None:
        return f"transaction {transaction_id}"
    info = payload.get("transactionInfo")
    named = info.get("transactionId") if isinstance(info, dict) else None
    return f"transaction {named}" if isinstance(named, str) else "no transaction"


#: OCPP 1.6 commands that name a transaction id the backend assigned (§5.12, §5.16).
COMMANDS_NAMING_TRANSACTION_16 = frozenset({"RemoteStopTransaction", "SetChargingProfile"})
#: Remote starts (OCPP 1.6 §5.11; 2.0.1 F01), which race for a connector.
START_ACTIONS = frozenset({"RemoteStartTransaction", "RequestStartTransaction"})


def command_transaction_16(payload: Mapping[str, Any]) -> Any:
    """The transaction id a 1.6 command names (RemoteStopTransaction, a TxProfile), if any."""
    named = payload.get("transactionId")
    if named is None:
        profile = payload.get("csChargingProfiles")
        named = profile.get("transactionId") if isinstance(profile, dict) else None
    return named


def command_transaction_2x(payload: Mapping[str, Any]) -> str | None:
    """The 2.x transaction id a command names (1.6 ids are numbers and get translated)."""
    named = payload.get("transactionId")
    return named if isinstance(named, str) else None


def command_connector(payload: Mapping[str, Any]) -> int | None:
    """The connector (1.6) or EVSE (2.x) a remote start asks for, if any."""
    for key in ("connectorId", "evseId"):
        value = payload.get(key)
        if type(value) is int:
            return value
    return None
