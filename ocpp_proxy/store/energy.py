"""Revenue of a finished session: pure arithmetic, no database.

The session's energy comes from :mod:`ocpp_proxy.metering` (the one computation of power,
current and energy).
"""

from __future__ import annotations

from collections.abc import Mapping

#: Decimals kept of a revenue (in currency units).
REVENUE_DECIMALS = 4


def session_revenue(
    energy_kwh: float | None, owner: str | None, tariffs: Mapping[str, tuple[float, str]]
) -> tuple[float | None, str | None]:
    """Return what a session earns its owner: ``(revenue, currency)``.

    Args:
        energy_kwh: the session's energy (kWh), or None if unknown.
        owner: the backend id the session is attributed to, or None.
        tariffs: backend id -> (price per kWh, currency code).

    Returns:
        ``(round(energy_kwh * price, 4), currency)`` when the energy is known and the owner
        has a tariff; ``(None, None)`` otherwise.
    """
    if energy_kwh is None or owner is None or owner not in tariffs:
        return None, None
    rate, currency = tariffs[owner]
    return round(energy_kwh * rate, REVENUE_DECIMALS), currency
