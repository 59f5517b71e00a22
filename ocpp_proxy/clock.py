"""Time as the proxy shows it: UTC, ISO 8601."""

from __future__ import annotations

import time


def iso_utc(timestamp: float | None) -> str | None:
    """Return a Unix time (s) as ``YYYY-MM-DDTHH:MM:SSZ``, or None for None."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
