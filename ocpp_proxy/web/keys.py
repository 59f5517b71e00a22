"""Typed keys of what the web API keeps on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ocpp_proxy.web.tokens import Identity, TokenBook


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

#: Every token the API accepts, with its role (set at startup).
TOKENS = web.AppKey("api_tokens", TokenBook)

#: The role each (method, route path) needs, from the route table.
ROUTE_ROLES = web.AppKey("route_roles", dict[tuple[str, str], str])

#: Who made the request (set on the request by the auth middleware).
IDENTITY = web.RequestKey("identity", Identity)

__all__ = ["API_TOKEN", "IDENTITY", "ROUTE_ROLES", "TOKENS", "ApiToken", "Identity"]
