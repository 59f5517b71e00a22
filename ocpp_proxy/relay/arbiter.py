"""The arbiter hook: every command a backend sends to the charger passes here first.

The relay asks :meth:`Arbiter.decide` before a backend's CALL reaches the charger. This
module holds the interface and the permissive arbiter the core proxy runs with; the
homeowner's rules plug in behind the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ocpp_proxy.protocol.versions import OcppVersion


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A backend's command to a charger, as the arbiter sees it.

    ``backend_id`` is the config id of the backend (``ocpp_services`` or ``inbound_backends``);
    ``action`` and ``payload`` are the CALL's (OCPP-J 1.6 §4.2.1).
    """

    charge_point_id: str
    version: OcppVersion
    backend_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    """The arbiter's answer: ``allowed``, and the rule that decided it (for logs and audit)."""

    allowed: bool
    rule: str
    reason: str = ""


ALLOW = Decision(True, "allow_all")


class Arbiter(Protocol):
    """Decides whether a backend may send a command to the charger."""

    def decide(self, request: CommandRequest) -> Decision:
        """Return the decision for ``request``; must not block (it runs on the frame path)."""
        ...


class AllowAll:
    """The arbiter of the core proxy: every command passes."""

    def decide(self, request: CommandRequest) -> Decision:
        """Allow ``request``."""
        return ALLOW
