"""The bundled charger simulator: a scriptable OCPP 1.6 / 2.0.1 / 2.1 charge point.

See :mod:`ocpp_proxy.simulator.charger`.  ``ocpp-proxy simulate`` uses :func:`add_arguments`
and :func:`main_async`; tests drive :class:`SimulatedCharger` step by step.
"""

from __future__ import annotations

from ocpp_proxy.simulator.charger import (
    DEFAULT_POWER_W,
    SUBPROTOCOLS,
    SUPPORTED_VERSIONS,
    SimulatedCharger,
    SimulationError,
    add_arguments,
    charger_url,
    main_async,
    run_simulation,
)

__all__ = [
    "DEFAULT_POWER_W",
    "SUBPROTOCOLS",
    "SUPPORTED_VERSIONS",
    "SimulatedCharger",
    "SimulationError",
    "add_arguments",
    "charger_url",
    "main_async",
    "run_simulation",
]
