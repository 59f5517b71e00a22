"""Durable storage of the proxy: one SQLite file per data dir (``ocpp-proxy.sqlite3``).

Open a :class:`Store` with ``await Store.open(path)``; see :mod:`ocpp_proxy.store.store` for
what it keeps and how durably, and :mod:`ocpp_proxy.store.schema` for the tables.
"""

from __future__ import annotations

from ocpp_proxy.metering import ENERGY_REGISTER
from ocpp_proxy.store.backup import DATABASE_FILE
from ocpp_proxy.store.errors import StoreError
from ocpp_proxy.store.rows import (
    AuditRow,
    ChargerRow,
    EnergyTotal,
    FrameDirection,
    MessageRow,
    MeterSample,
    OutboxRow,
    SessionRow,
)
from ocpp_proxy.store.schema import SCHEMA_VERSION
from ocpp_proxy.store.store import Store

__all__ = [
    "DATABASE_FILE",
    "ENERGY_REGISTER",
    "SCHEMA_VERSION",
    "AuditRow",
    "ChargerRow",
    "EnergyTotal",
    "FrameDirection",
    "MessageRow",
    "MeterSample",
    "OutboxRow",
    "SessionRow",
    "Store",
    "StoreError",
]
