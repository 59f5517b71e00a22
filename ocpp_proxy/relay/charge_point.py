"""What the relay knows of one charge point now: its connection, connectors and sessions.

The hub owns this state and changes it as the charger's frames come in; the charger commands
(:mod:`ocpp_proxy.relay.charger_commands`) and the displays read it. Frames to the charger go
through its connection's send queue (:meth:`ChargePoint.send`), which never waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocpp_proxy.clock import Clock
from ocpp_proxy.policy.decisions import ChargerContext
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.journal import CHARGER, Journal
from ocpp_proxy.relay.sender import Peer, PeerSender
from ocpp_proxy.relay.sessions import SessionRecorder
from ocpp_proxy.relay.transaction_ids import TransactionIds


@dataclass(slots=True, eq=False)
class ChargerConnection:
    """The charger's open WebSocket, its send queue and what was negotiated on it."""

    peer: Peer
    sender: PeerSender
    version: OcppVersion
    remote: str
    connected_since: float
    # Actions whose schema violations were logged on this connection (logged once each).
    schema_warned: set[str] = field(default_factory=set)


class ChargePoint:
    """The state of one charge point that outlives its connections.

    Args:
        charge_point_id: the charge point's id (the last part of its URL).
        version: the OCPP version it is expected to speak until it connects.
        journal: where frames are logged.
        sessions: its sessions.
        clock: for ``last_message_at``.
        on_change: called when something ``/status`` shows has changed.
    """

    def __init__(
        self,
        charge_point_id: str,
        version: OcppVersion,
        *,
        journal: Journal,
        sessions: SessionRecorder,
        clock: Clock,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.id = charge_point_id
        self.version = version
        self.journal = journal
        self.sessions = sessions
        self.clock = clock
        self.connection: ChargerConnection | None = None
        self.last_message_at: float | None = None
        self.connectors: dict[str, dict[str, Any]] = {}
        self.transaction_ids = TransactionIds()
        self._on_change = on_change

    @property
    def online(self) -> bool:
        """Whether the charger is connected."""
        return self.connection is not None

    def send(self, text: str, head: tuple[int, str, str | None] | None = None) -> bool:
        """Queue a frame for the charger (never waits); False if it is not connected.

        ``head`` is the frame's (message type, unique id, action) for the message log, if
        known (else it is read from ``text``).
        """
        connection = self.connection
        if connection is None:
            return False
        self.journal.frame(CHARGER, "out", text, head)
        return connection.sender.send(text)

    def context(self) -> ChargerContext:
        """What the arbiter needs to know of the charger now."""
        statuses: dict[int, str] = {}
        for entry in self.connectors.values():
            where = entry["evse_id"] if entry["evse_id"] is not None else entry["connector_id"]
            if type(where) is int and isinstance(entry["status"], str):
                statuses[where] = entry["status"]
        return ChargerContext(
            online=self.online,
            connector_status=statuses,
            sessions=self.sessions.running(),
            claims=self.sessions.claims(),
        )

    def changed(self) -> None:
        """Tell the watchers of ``/status`` that something changed."""
        if self._on_change is not None:
            self._on_change()
