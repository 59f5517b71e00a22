"""Typed keys of what the web API keeps on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

#: The bearer token of the REST API on the direct port (set at startup).
API_TOKEN = web.AppKey("api_token", str)
