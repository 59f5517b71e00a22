"""ocpp-proxy: one charger's OCPP traffic carried to several central systems (CSMSs)."""

from __future__ import annotations

__version__ = "0.1.0"
