"""Query-string parsing for the REST API: each bad value is a 400 naming its parameter."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from ocpp_proxy.web.errors import bad_request


def int_param(request: web.Request, name: str, default: int, *, maximum: int) -> int:
    """A non-negative integer parameter, at most ``maximum``."""
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(name, f"expected an integer from 0 to {maximum}") from None
    if not 0 <= value <= maximum:
        raise bad_request(name, f"expected an integer from 0 to {maximum}")
    return value


def choice_param(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default)."""
    value = request.query.get(name) or choices[0]
    if value not in choices:
        raise bad_request(name, f"expected one of {', '.join(choices)}")
    return value


def time_param(request: web.Request, name: str, *, end_of_day: bool = False) -> float | None:
    """An ISO 8601 date or date-time as Unix s (local time when it names no zone).

    A plain date is the start of that day, or with ``end_of_day`` the start of the next (so
    that ``to=2026-01-31`` includes the 31st).
    """
    text = request.query.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(name, "expected an ISO 8601 date (YYYY-MM-DD) or date-time") from None
    if end_of_day and len(text) == 10:
        moment += timedelta(days=1)
    return moment.timestamp()


def wants_csv(request: web.Request) -> bool:
    """Whether ``?format=csv`` (else JSON; anything else is a 400)."""
    return choice_param(request, "format", ("json", "csv")) == "csv"
