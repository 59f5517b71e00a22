"""The homeowner's settings, changed the same way over the REST API and from Home Assistant.

Each change is written to the audit log with who made it (``homeowner`` over REST,
``home_assistant`` over MQTT) before it takes effect, so that no change shows without its
entry; then the registry applies it (kept across restarts, the current limit sent to every
connected charger).
"""

from __future__ import annotations

import math

from ocpp_proxy.audit import record_setting
from ocpp_proxy.relay.registry import HubRegistry


async def set_override(registry: HubRegistry, enabled: bool, *, actor: str) -> None:
    """Turn the homeowner's override on (backends may only read) or off; audited."""
    await record_setting(
        registry.store, actor=actor, action="SetOverride", value={"enabled": enabled}
    )
    await registry.set_override(enabled)


async def set_shared_charging(registry: HubRegistry, enabled: bool, *, actor: str) -> None:
    """Allow backends to control the charger, or hold them to reading; audited."""
    await record_setting(
        registry.store, actor=actor, action="SetSharedCharging", value={"enabled": enabled}
    )
    await registry.set_shared_charging(enabled)


async def set_max_current(
    registry: HubRegistry, max_current_a: float | None, *, actor: str
) -> None:
    """Set the homeowner's charger-wide limit (A; None lifts it); audited.

    Raises:
        ValueError: ``max_current_a`` is negative, infinite or NaN.
    """
    if max_current_a is not None and not (math.isfinite(max_current_a) and max_current_a >= 0):
        raise ValueError(f"expected a current >= 0 A, got {max_current_a}")
    await record_setting(
        registry.store, actor=actor, action="SetMaxCurrent", value={"max_current_a": max_current_a}
    )
    await registry.set_max_current(max_current_a)
