"""The bundled charger simulator: a scriptable OCPP 1.6 / 2.0.1 / 2.1 charge point.

:mod:`~ocpp_proxy.simulator.charger` holds :class:`SimulatedCharger`, the version-neutral
charger tests drive step by step; it speaks through a per-version peer built on the ``ocpp``
library: :mod:`~ocpp_proxy.simulator.v16` (OCPP 1.6) or :mod:`~ocpp_proxy.simulator.v2`
(OCPP 2.0.1 and 2.1), which share :mod:`~ocpp_proxy.simulator.common`.
``ocpp-proxy simulate-charger`` uses :func:`add_arguments` and :func:`main_async` of
:mod:`~ocpp_proxy.simulator.run`.
"""

from __future__ import annotations

from ocpp_proxy.simulator.charger import SimulatedCharger
from ocpp_proxy.simulator.common import (
    DEFAULT_POWER_W,
    SUBPROTOCOLS,
    SUPPORTED_VERSIONS,
    SimulationError,
    charger_url,
)
from ocpp_proxy.simulator.run import add_arguments, main_async, run_simulation

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
