"""The homeowner's inputs the arbiter reads: override, presence, and the current limit.

They come from the REST API (override, current limit; kept across restarts) and from Home
Assistant (the override ``input_boolean`` and the presence sensor). A Home Assistant input that
is configured but unknown, because Home Assistant cannot be reached or the entity is missing
or ``unavailable``, reads as None, and the arbiter then fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Home Assistant states that mean "someone is home" for a presence entity.
HOME_STATES = frozenset({"on", "home"})


@dataclass(slots=True)
class HomeState:
    """The homeowner's inputs, one set for the whole house.

    ``override_api``: the override set through the API. ``override_ha``: the override
    ``input_boolean`` (None while unknown). ``someone_home``: the presence sensor (None while
    unknown). ``ha_connected``: whether Home Assistant is reachable. ``max_current_a``: the
    homeowner's current limit at run time (A; None: the config's ``max_current_a``).
    ``shared_charging``: whether backends may control the charger, set at run time (None:
    the config's ``allow_shared_charging``).
    """

    override_api: bool = False
    override_ha: bool | None = None
    someone_home: bool | None = None
    ha_connected: bool = False
    max_current_a: float | None = None
    shared_charging: bool | None = None
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def changed(self) -> None:
        """Tell the listeners (status feeds, the limit keeper) that something changed."""
        for listener in self.listeners:
            listener()

    def shared_charging_allowed(self, default: bool) -> bool:
        """Whether backends may control the charger: the run-time switch, else ``default``."""
        return default if self.shared_charging is None else self.shared_charging

    def set_presence_state(self, state: str | None) -> None:
        """Take a Home Assistant state of the presence entity (``on``/``home`` = someone home).

        None, ``unavailable`` and ``unknown`` make presence unknown.
        """
        self.someone_home = (
            None if state in (None, "unavailable", "unknown") else (state in HOME_STATES)
        )
        self.changed()

    def set_override_state(self, state: str | None) -> None:
        """Take a Home Assistant state of the override ``input_boolean`` (``on`` = override)."""
        self.override_ha = None if state in (None, "unavailable", "unknown") else state == "on"
        self.changed()

    def unreadable(self, override_entity: str, presence_entity: str) -> list[str]:
        """The configured Home Assistant entities whose state is unknown now (fail closed)."""
        return [
            entity
            for entity, value in (
                (override_entity, self.override_ha),
                (presence_entity, self.someone_home),
            )
            if entity and (value is None or not self.ha_connected)
        ]

    def override_state(self, override_entity: str, presence_entity: str) -> dict[str, Any]:
        """The override as the arbiter reads it, with where each part comes from."""
        unreadable = self.unreadable(override_entity, presence_entity)
        return {
            "enabled": self.override_api or bool(self.override_ha) or bool(unreadable),
            "api": self.override_api,
            "home_assistant": self.override_ha,
            "fail_closed": bool(unreadable),
            "unreadable": unreadable,
        }
