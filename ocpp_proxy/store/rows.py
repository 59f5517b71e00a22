"""The rows the store returns and takes: frozen, slotted dataclasses.

All times are Unix seconds (UTC, float). Energies are Wh where the name says ``_wh`` and kWh
where it says ``_kwh``; revenue is in ``currency`` units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Which way a logged frame went, seen from the proxy: ``"in"`` received, ``"out"`` sent.
FrameDirection = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class ChargerRow:
    """A charge point the proxy has seen.

    ``vendor``, ``model``, ``serial`` and ``firmware`` come from its last BootNotification
    (None until it sent one, or when it left them out). ``first_seen`` and ``last_seen`` are
    Unix s; ``online`` is whether its WebSocket is connected to this proxy process.
    """

    id: str
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    first_seen: float
    last_seen: float
    online: bool


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A charger CALL one backend has not confirmed yet, kept for delivery in ``id`` order.

    ``frame`` is the OCPP-J text as the charger sent it; ``transaction_id`` the charger-side
    OCPP 1.6 transaction id it refers to (None if none); ``created_at`` Unix s.
    """

    id: int
    backend_id: str
    action: str
    frame: str
    transaction_id: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampled value of a MeterValues or TransactionEvent (OCPP 1.6 §7.45 SampledValue).

    ``at`` is the sample's Unix time (s); ``measurand`` e.g. ``Energy.Active.Import.Register``;
    ``phase`` e.g. ``L1`` (None: all phases); ``value`` in ``unit`` (e.g. ``Wh``, ``kWh``, ``W``;
    None means the measurand's OCPP default, Wh for energy); ``context`` e.g.
    ``Sample.Periodic``.
    """

    at: float
    measurand: str
    phase: str | None
    value: float
    unit: str | None = None
    context: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A charging session (one transaction on one charge point).

    ``transaction_id`` is the id the charger uses (OCPP 1.6: the proxy's integer id as text;
    2.x: the charger's own). ``owner`` is the backend the session is attributed to (None: the
    homeowner / nobody). ``started_at``/``stopped_at`` Unix s (``stopped_at`` None while open);
    ``meter_start_wh``/``meter_stop_wh`` register readings in Wh; ``energy_kwh`` the energy
    delivered in kWh (None until stopped or when unknown); ``revenue`` in ``currency`` for the
    owner's tariff (None when the owner has no tariff or the energy is unknown);
    ``backend_transaction_ids`` maps backend id to the transaction id that backend assigned.
    """

    id: int
    charge_point_id: str
    connector_id: int | None
    evse_id: int | None
    transaction_id: str
    owner: str | None
    id_tag: str | None
    started_at: float
    stopped_at: float | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_kwh: float | None
    stop_reason: str | None
    revenue: float | None
    currency: str | None
    backend_transaction_ids: dict[str, str] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """Whether the session has not stopped yet."""
        return self.stopped_at is None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One decision about a backend's command (or another homeowner-visible event).

    ``actor`` is who asked (a backend id, ``homeowner``, ...); ``action`` the OCPP action;
    ``summary`` a one-line human description; ``decision`` e.g. ``allowed``/``refused``;
    ``rule`` and ``reason`` why; ``answer`` what the requester was answered; ``at`` Unix s.
    """

    id: int
    charge_point_id: str | None
    at: float
    actor: str
    action: str
    summary: str
    decision: str
    rule: str | None
    reason: str | None
    answer: str | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One OCPP-J frame the proxy received or sent.

    ``peer`` is who was on the other end (``charger`` or a backend id); ``direction`` is
    ``in`` (received by the proxy) or ``out`` (sent); ``message_type`` 2 CALL, 3 CALLRESULT,
    4 CALLERROR (5/6 in OCPP 2.1); ``size`` the frame's length in bytes (UTF-8); ``at`` Unix s.
    """

    id: int
    charge_point_id: str
    at: float
    peer: str
    direction: FrameDirection
    message_type: int
    action: str | None
    unique_id: str
    frame: str
    size: int


@dataclass(frozen=True, slots=True)
class EnergyTotal:
    """Finished sessions of one period, charge point and owner, summed.

    ``period`` is ``YYYY-MM-DD`` (a day, or the Monday of a week) or ``YYYY-MM``; ``owner``
    the backend the sessions are attributed to (None: nobody); ``energy_kwh`` their energy
    (kWh; unknown energies count 0); ``revenue`` in ``currency`` (None when none had one).
    """

    period: str
    charge_point_id: str
    owner: str | None
    sessions: int
    energy_kwh: float
    revenue: float | None
    currency: str | None
