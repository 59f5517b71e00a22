"""What the arbiter decides on, and what it answers: the types the relay and policy share.

The relay asks :meth:`Arbiter.decide` before a backend's CALL reaches the charger, with what
the relay knows of the charger at that moment (:class:`CommandRequest`). This module holds
those types, the interface and a permissive arbiter; the homeowner's rules
(:mod:`ocpp_proxy.policy.rules`) are the arbiter the proxy runs with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocpp_proxy.protocol.versions import OcppVersion

#: The requester name of the homeowner's own commands (web page, REST API, Home Assistant).
HOMEOWNER = "homeowner"


@dataclass(frozen=True, slots=True)
class RunningSession:
    """A session the charger is running: its charger-side transaction id, where, and whose."""

    transaction: str
    connector: int | None  # 1.6 connector, 2.x EVSE
    owner: str | None


@dataclass(frozen=True, slots=True)
class ChargerContext:
    """What the relay knows of the charger when a command arrives.

    ``connector_status`` is keyed by connector (1.6) or EVSE (2.x) with the last
    StatusNotification's status; ``claims`` maps a connector (None: any) to the backend whose
    accepted remote start has not begun its session yet.
    """

    online: bool = True
    connector_status: Mapping[int, str] = field(default_factory=dict)
    sessions: tuple[RunningSession, ...] = ()
    claims: Mapping[int | None, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A command to a charger, as the arbiter sees it.

    ``requester`` is the backend's config id (``ocpp_services`` or ``inbound_backends``) or
    :data:`HOMEOWNER`; ``action`` and ``payload`` are the CALL's (OCPP-J 1.6 §4.2.1);
    ``transaction`` is the charger-side transaction id the command names, if any (1.6 ids are
    already translated from the backend's).
    """

    charge_point_id: str
    version: OcppVersion
    requester: str
    action: str
    payload: dict[str, Any]
    transaction: str | None = None
    context: ChargerContext = field(default_factory=ChargerContext)


@dataclass(frozen=True, slots=True)
class Decision:
    """The arbiter's answer: ``allowed``, and the rule that decided it (for logs and audit)."""

    allowed: bool
    rule: str
    reason: str = ""


ALLOW = Decision(True, "allow_all")


class Arbiter(Protocol):
    """Decides whether a command may reach the charger."""

    def decide(self, request: CommandRequest) -> Decision:
        """Return the decision for ``request``; must not block (it runs on the frame path)."""
        ...


class AllowAll:
    """An arbiter that lets every command pass (for relaying without a homeowner's rules)."""

    def decide(self, request: CommandRequest) -> Decision:
        """Allow ``request``."""
        return ALLOW
