"""Sessions and energy totals as JSON-ready dicts and as CSV, with the home's cost estimate.

A session not charged to a backend (its owner is ``local`` or nobody, or it earned no revenue)
costs the homeowner ``energy_kwh`` x ``home_rate_per_kwh`` in ``home_currency``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.store import EnergyTotal, SessionRow

#: The owner of sessions the proxy answered itself (see ``ocpp_proxy.relay.sessions``).
LOCAL_OWNER = "local"

SESSION_COLUMNS = (
    "id",
    "charge_point_id",
    "connector_id",
    "evse_id",
    "transaction_id",
    "owner",
    "id_tag",
    "started_at",
    "stopped_at",
    "duration_s",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_kwh",
    "stop_reason",
    "revenue",
    "currency",
    "home_cost",
    "home_currency",
)

ENERGY_COLUMNS = (
    "period",
    "charge_point_id",
    "owner",
    "sessions",
    "energy_kwh",
    "revenue",
    "currency",
    "home_cost",
    "home_currency",
)


def charged_to_home(owner: str | None, revenue: float | None) -> bool:
    """Whether the homeowner pays for the energy (no backend pays for it)."""
    return owner in (None, LOCAL_OWNER) or not revenue


def home_cost(
    config: ProxyConfig, owner: str | None, revenue: float | None, kwh: float | None
) -> float | None:
    """The homeowner's cost of ``kwh`` when no backend pays for it (None: not the home's)."""
    if kwh is None or not charged_to_home(owner, revenue):
        return None
    return round(kwh * config.home_rate_per_kwh, 4)


def session_dict(config: ProxyConfig, row: SessionRow, now: float) -> dict[str, Any]:
    """A session as the API shows it (times ISO 8601 UTC)."""
    end = row.stopped_at if row.stopped_at is not None else now
    cost = home_cost(config, row.owner, row.revenue, row.energy_kwh)
    return {
        "id": row.id,
        "charge_point_id": row.charge_point_id,
        "connector_id": row.connector_id,
        "evse_id": row.evse_id,
        "transaction_id": row.transaction_id,
        "owner": row.owner,
        "id_tag": row.id_tag,
        "started_at": iso_utc(row.started_at),
        "stopped_at": iso_utc(row.stopped_at) if row.stopped_at is not None else None,
        "duration_s": round(max(0.0, end - row.started_at), 1),
        "meter_start_wh": row.meter_start_wh,
        "meter_stop_wh": row.meter_stop_wh,
        "energy_kwh": row.energy_kwh,
        "stop_reason": row.stop_reason,
        "revenue": row.revenue,
        "currency": row.currency,
        "home_cost": cost,
        "home_currency": config.home_currency if cost is not None else None,
        "backend_transaction_ids": dict(row.backend_transaction_ids),
    }


def energy_dict(config: ProxyConfig, total: EnergyTotal) -> dict[str, Any]:
    """An energy total as the API shows it, with the home's cost."""
    cost = home_cost(config, total.owner, total.revenue, total.energy_kwh)
    return {
        "period": total.period,
        "charge_point_id": total.charge_point_id,
        "owner": total.owner,
        "sessions": total.sessions,
        "energy_kwh": round(total.energy_kwh, 6),
        "revenue": None if total.revenue is None else round(total.revenue, 4),
        "currency": total.currency,
        "home_cost": cost,
        "home_currency": config.home_currency if cost is not None else None,
    }


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV with a header line; None becomes an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()
