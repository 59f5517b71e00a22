"""Typed keys of what the web API keeps on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass(slots=True)
class ApiToken:
    """The REST API's bearer token, mutable: the homeowner may regenerate it.

    ``value`` is the token; ``configured`` whether it is the ``api_token`` option (else it was
    generated and is kept at ``path``).
    """

    value: str = field(repr=False)
    configured: bool
    path: Path | None = None


#: The bearer token of the REST API on the direct port (set at startup).
API_TOKEN = web.AppKey("api_token", ApiToken)
