"""What one translated backend link must remember between messages.

A translation is not stateless: a CALLRESULT carries no action, so the action (and anything the
answer needs) of every CALL in flight is kept here until its answer; 2.x transaction events
count ``seqNo`` per transaction (OCPP 2.0.1 E01.FR.16-17); a 1.6 backend assigns an integer
transaction id (OCPP 1.6 §4.8) where a 2.x charging station names a string; a 2.x
``remoteStartId`` (2.0.1 F01) must find the 1.6 transaction it started. Every map is bounded,
so a peer that never answers cannot grow memory.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ocpp_proxy.translation.common import Outcome, Payload

K = TypeVar("K")
V = TypeVar("V")

#: How many entries each map keeps (CALLs in flight, transactions).
KEEP = 512

#: The namespace of the 2.x transaction ids the proxy derives for a 1.6 charger's transactions.
_TRANSACTION_NAMESPACE = uuid.UUID("5d0a3c1e-9f6b-4c3e-8a0d-6f1c2b7e4a90")


class Bounded(OrderedDict[K, V], Generic[K, V]):
    """An insertion-ordered dict that forgets its oldest entries past ``KEEP``."""

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        while len(self) > KEEP:
            self.popitem(last=False)


AnswerFn = Callable[[Payload, dict[str, Any]], Payload]


@dataclass(slots=True)
class Pending:
    """A CALL in flight: how to translate its answer, and what that needs (``context``)."""

    action: str  # the action as the CALL's sender named it
    answer: AnswerFn
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Transaction2x:
    """A 2.x charging station's transaction as a 1.6 backend is told of it.

    ``started`` is whether the 1.6 backend got its StartTransaction (which needs an id tag,
    so it waits for the first event that has one); ``backend_id`` is the id it assigned.
    """

    evse: int
    id_tag: str | None = None
    meter_start_wh: int | None = None
    last_register_wh: int | None = None
    start_time: str | None = None
    reservation_id: int | None = None
    started: bool = False
    backend_id: int | None = None
    charging_state: str | None = None


@dataclass(slots=True)
class RemoteStart:
    """A 2.x backend's RequestStartTransaction sent to a 1.6 charger as RemoteStartTransaction."""

    remote_start_id: int
    id_tag: str
    connector: int | None


class LinkTranslationState:
    """The per-link memory of a translation (one backend of one charge point).

    Args:
        charge_point_id: the charge point's id; it seeds the 2.x transaction ids derived for a
            1.6 charger's transactions, so that they are unique across charge points.
        known_transactions: the charger-side 1.6 transaction ids the relay remembers (e.g.
            from before a restart), to recognise their 2.x ids in a backend's command.
    """

    def __init__(
        self,
        charge_point_id: str = "",
        known_transactions: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        self.charge_point_id = charge_point_id
        self._known_transactions = known_transactions
        # CALLs in flight, by the unique id their sender gave them.
        self.charger_calls: Bounded[str, Pending] = Bounded()
        self.backend_calls: Bounded[str, Pending] = Bounded()
        # What a charger CALL became, so that a resend is the same message (same seqNo).
        self.rendered: Bounded[tuple[str, str], Any] = Bounded()
        # -- a 1.6 charger behind a 2.x backend --
        self.seq_no: Bounded[str, int] = Bounded()  # 2.x transaction id -> next seqNo
        self.transactions_16: Bounded[str, int] = Bounded()  # 2.x id -> charger's 1.6 id
        self._ids_2x: Bounded[int, str] = Bounded()  # charger's 1.6 id -> 2.x id (derived)
        self.tx_connector: Bounded[int, int] = Bounded()  # charger's 1.6 id -> connector
        self.connector_status: dict[int, str] = {}  # last 1.6 status per connector
        self.connector_2x: dict[int, str] = {}  # last 2.x connectorStatus sent per connector
        self.remote_starts: Bounded[str, RemoteStart] = Bounded()  # by id tag
        self.request_ids: Bounded[int, str] = Bounded()  # 2.x requestId -> 1.6 action
        self.firmware_request_id: int | None = None
        self.log_request_id: int | None = None
        self.boot_reason: str | None = None
        self._next_request_id = 1
        # -- a 2.x charger behind a 1.6 backend --
        self.transactions_2x: Bounded[str, Transaction2x] = Bounded()  # by 2.x id
        self.by_backend_id: Bounded[int, str] = Bounded()  # 1.6 backend id -> 2.x id
        # -- what must survive a restart (see durable()) --
        self.ended_16: Bounded[str, bool] = Bounded()  # 2.x ids of a 1.6 charger's ended ones
        self.dirty: set[str] = set()  # 2.x transaction ids whose durable() changed
        # CALLs the proxy owes the backend (its version), after an answer (e.g. NotifyReport
        # after GetBaseReport, OCPP 2.0.1 B07), and the unique ids of those it sent.
        self.follow_ups: list[tuple[str, Payload]] = []
        self.own_calls: Bounded[str, str] = Bounded()

    def transaction_id_2x(self, charger_transaction_id: int) -> str:
        """The 2.x transaction id a 2.x backend sees for the charger's 1.6 transaction.

        Derived from the charge point id and the charger-side id alone (a name-based UUID,
        36 characters, the longest 2.0.1 allows), so it is the same after a restart.
        """
        text = self._ids_2x.get(charger_transaction_id)
        if text is None:
            name = f"{self.charge_point_id}/{charger_transaction_id}"
            text = str(uuid.uuid5(_TRANSACTION_NAMESPACE, name))
            self._ids_2x[charger_transaction_id] = text
        self.transactions_16[text] = charger_transaction_id
        return text

    def charger_transaction_id(self, transaction_id_2x: Any) -> int | None:
        """The charger's 1.6 transaction id for a 2.x id this link handed out, or None."""
        if not isinstance(transaction_id_2x, str):
            return None
        found = self.transactions_16.get(transaction_id_2x)
        if found is None and self._known_transactions is not None:
            # Not seen since the proxy started: derive the ids of the transactions the relay
            # remembers (bounded) and look again.
            for charger_transaction_id in self._known_transactions():
                self.transaction_id_2x(charger_transaction_id)
            found = self.transactions_16.get(transaction_id_2x)
        return found

    def next_seq_no(self, transaction_id_2x: str) -> int:
        """The ``seqNo`` of the next event of a transaction (0 for Started, then +1)."""
        seq = self.seq_no.get(transaction_id_2x, 0)
        self.seq_no[transaction_id_2x] = seq + 1
        return seq

    def new_request_id(self, action: str) -> int:
        """A 2.x ``requestId`` for a 1.6 command that has none (GetDiagnostics, UpdateFirmware)."""
        request_id = self._next_request_id
        self._next_request_id += 1
        self.request_ids[request_id] = action
        return request_id

    def durable(self, transaction_id_2x: str) -> dict[str, Any] | None:
        """What a running transaction's translation needs after a restart, JSON-able.

        Taken when the backend confirmed an event (so a restart resends the unconfirmed ones
        from the outbox with the same ``seqNo``, and a start the backend never answered).

        For a 1.6 charger's transaction the next ``seqNo`` (and the charger's id and connector);
        for a 2.x station's transaction the id its 1.6 backend assigned, with what the
        StopTransaction needs. None when there is nothing to keep (ended, or never started).
        """
        tx = self.transactions_2x.get(transaction_id_2x)
        if tx is not None:
            if not tx.started or tx.backend_id is None:
                # Not answered yet: after a restart the outbox sends the start again.
                return None
            return {
                "kind": "2x",
                "evse": tx.evse,
                "id_tag": tx.id_tag,
                "meter_start_wh": tx.meter_start_wh,
                "last_register_wh": tx.last_register_wh,
                "backend_id": tx.backend_id,
                "charging_state": tx.charging_state,
            }
        if transaction_id_2x in self.seq_no and transaction_id_2x not in self.ended_16:
            charger_tx = self.transactions_16.get(transaction_id_2x)
            return {
                "kind": "16",
                "seq_no": self.seq_no[transaction_id_2x],
                "transaction_id": charger_tx,
                "connector": self.tx_connector.get(charger_tx) if charger_tx is not None else None,
            }
        return None

    def restore(self, transaction_id_2x: str, kept: dict[str, Any], charger_16: bool) -> None:
        """Take back what :meth:`durable` gave, for a charger of 1.6 (``charger_16``) or 2.x."""
        try:
            if kept.get("kind") == "16" and charger_16:
                self.seq_no[transaction_id_2x] = int(kept["seq_no"])
                charger_tx = kept.get("transaction_id")
                if type(charger_tx) is int:
                    self.transactions_16[transaction_id_2x] = charger_tx
                    if type(kept.get("connector")) is int:
                        self.tx_connector[charger_tx] = kept["connector"]
            elif kept.get("kind") == "2x" and not charger_16:
                tx = Transaction2x(
                    evse=int(kept["evse"]),
                    id_tag=kept.get("id_tag"),
                    meter_start_wh=kept.get("meter_start_wh"),
                    last_register_wh=kept.get("last_register_wh"),
                    started=True,
                    backend_id=kept.get("backend_id"),
                    charging_state=kept.get("charging_state"),
                )
                self.transactions_2x[transaction_id_2x] = tx
                if type(tx.backend_id) is int:
                    self.by_backend_id[tx.backend_id] = transaction_id_2x
        except (KeyError, TypeError, ValueError):
            return  # a row this version cannot read: the transaction is translated afresh

    def running_2x(self) -> bool:
        """Whether a 2.x charging station's transaction is running (as far as seen)."""
        return bool(self.transactions_2x)

    def running_16(self) -> bool:
        """Whether a 1.6 charger's transaction is running (as far as seen)."""
        return bool(self.tx_connector)


@dataclass(slots=True)
class Context:
    """What a translation function gets besides the payload.

    ``transaction_id`` is the charger-side OCPP 1.6 transaction id the relay assigned or read
    for this message (None if none); ``memo`` is kept with the CALL until its answer, for the
    answer's translation; :attr:`now` is the current time as ISO 8601 UTC (for fields one
    version requires and the other lacks), read from ``clock`` only when needed.
    """

    state: LinkTranslationState
    action: str
    clock: Callable[[], str]
    transaction_id: int | None = None
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> str:
        """The current time, ISO 8601 UTC."""
        return self.clock()


#: Translates a CALL's payload (see ocpp_proxy.translation.charger_messages).
RequestFn = Callable[[Payload, Context], Outcome]
