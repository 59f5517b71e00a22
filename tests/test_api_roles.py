"""API tokens with roles: every route of the route table, for every role.

A request without a valid token gets 401; a valid token whose role is below the route's gets
403; a token with the role gets past the check (whatever the handler then answers). Tokens
are made, listed and revoked by an admin; only their SHA-256 is kept; changes are audited with
the token's name; the OpenAPI document states each operation's role.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ocpp_proxy.config import API_ROLES
from ocpp_proxy.web.openapi import document
from ocpp_proxy.web.routes import PREFIX, ROUTES, Route
from tests.conftest import Proxy, StartProxy

ADMIN = "admin-token-0123456789"
TOKENS = {
    "read": "reader-token-0123456789",
    "control": "control-token-0123456789",
    "admin": "second-admin-0123456789",
}
PATH_VALUES = {
    "charge_point_id": "CP_1",
    "command": "reset",
    "session_id": "1",
    "name": "nobody",
    "webhook_id": "nowhere",
    "card_id": "NOCARD01",
}


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


async def call(proxy: Proxy, method: str, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"http://127.0.0.1:{proxy.port}{path}",
            headers=headers,
            json={} if method != "GET" else None,
        ) as response,
    ):
        return response.status  # the body is not read: /events would stream forever


@pytest.fixture
async def proxy(start_proxy: StartProxy) -> Proxy:
    return await start_proxy(
        api_token=ADMIN,
        api_public_read=False,
        api_tokens=[
            {"name": f"{role}-user", "token": t, "role": role} for role, t in TOKENS.items()
        ],
    )


CASES = [
    (route, path, role)
    for route in ROUTES
    if route.path != "/health"
    for path in (PREFIX + route.path, *route.aliases)
    for role in (None, *API_ROLES)
]


@pytest.mark.parametrize(
    ("route", "path", "role"),
    CASES,
    ids=[f"{r.method} {p} as {role or 'nobody'}" for r, p, role in CASES],
)
async def test_every_route_checks_the_role(
    proxy: Proxy, route: Route, path: str, role: str | None
) -> None:
    status = await call(proxy, route.method, concrete(path), TOKENS.get(role or ""))
    if role is None:
        assert status == 401
    elif API_ROLES.index(role) < API_ROLES.index(route.role) or route.ingress_only:
        assert status == 403
    else:
        assert status not in (401, 403)


async def test_the_openapi_document_states_each_operations_role() -> None:
    paths = document()["paths"]
    for route in ROUTES:
        operation = paths[PREFIX + route.path][route.method.lower()]
        assert operation["x-required-role"] == route.role
        assert route.role in operation["description"]
        if route.path != "/health":
            assert {"401", "403"} <= operation["responses"].keys()
    assert {r.role for r in ROUTES} == set(API_ROLES)


async def api(
    proxy: Proxy, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    return await proxy.call(method, path, body, token)


async def test_an_admin_makes_lists_and_revokes_tokens_kept_hashed(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(api_token=ADMIN, api_public_read=False)
    status, made = await api(proxy, "POST", "/api/v1/tokens", ADMIN, {"name": "kiosk"})
    assert status == 201 and made["role"] == "read" and len(made["token"]) >= 32
    secret = made["token"]
    status, listing = await api(proxy, "GET", "/api/v1/tokens", ADMIN)
    assert {(t["name"], t["role"], t["source"]) for t in listing["tokens"]} == {
        ("api_token", "admin", "api_token"),
        ("kiosk", "read", "api"),
    }
    assert secret not in str(listing) and ADMIN not in str(listing)
    with sqlite3.connect(tmp_path / "data" / "ocpp-proxy.sqlite3") as db:
        (kept,) = db.execute("SELECT token_sha256 FROM api_tokens").fetchone()
    assert kept == hashlib.sha256(secret.encode()).hexdigest()

    assert (await api(proxy, "GET", "/api/v1/status", secret))[0] == 200
    status, body = await api(proxy, "POST", "/api/v1/override", secret, {"enabled": True})
    assert (status, body["role"]) == (403, "control")
    assert (await api(proxy, "POST", "/api/v1/tokens", secret, {"name": "x"}))[0] == 403
    # Names are unique; roles are known ones.
    assert (await api(proxy, "POST", "/api/v1/tokens", ADMIN, {"name": "kiosk"}))[0] == 409
    assert (await api(proxy, "POST", "/api/v1/tokens", ADMIN, {"name": "api_token"}))[0] == 409
    status, body = await api(proxy, "POST", "/api/v1/tokens", ADMIN, {"name": "y", "role": "root"})
    assert (status, body["field"]) == (400, "role")

    # Kept across a restart, and gone at once when revoked.
    await proxy.stop()
    proxy = await start_proxy(api_token=ADMIN, api_public_read=False)
    assert (await api(proxy, "GET", "/api/v1/status", secret))[0] == 200
    assert (await api(proxy, "DELETE", "/api/v1/tokens/kiosk", ADMIN))[0] == 200
    assert (await api(proxy, "GET", "/api/v1/status", secret))[0] == 401
    assert (await api(proxy, "DELETE", "/api/v1/tokens/kiosk", ADMIN))[0] == 404
    assert (await api(proxy, "DELETE", "/api/v1/tokens/api_token", ADMIN))[0] == 409


async def test_changes_are_audited_with_the_tokens_name(proxy: Proxy) -> None:
    status, _ = await api(proxy, "POST", "/api/v1/override", TOKENS["control"], {"enabled": True})
    assert status == 200
    status, body = await api(proxy, "GET", "/api/v1/audit?limit=5", TOKENS["read"])
    entry = next(e for e in body["entries"] if e["actor"].startswith("api:"))
    assert entry["actor"] == "api:control-user"
    assert entry["action"] == "POST /api/v1/override"
    # Reads are not audited.
    assert all(e["actor"] != "api:read-user" for e in body["entries"])


async def test_public_read_lets_reads_through_but_not_admin_reads(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(api_token=ADMIN, api_public_read=True)
    assert await call(proxy, "GET", "/api/v1/status", None) == 200
    assert await call(proxy, "GET", "/api/v1/webhooks", None) == 401
    assert await call(proxy, "GET", "/api/v1/override", None) == 200
    assert await call(proxy, "POST", "/api/v1/override", None) == 401


async def test_home_assistant_ingress_is_admin_and_a_forged_one_is_nobody(
    start_proxy: StartProxy,
) -> None:
    # 127.0.0.1 stands in for the Supervisor on the ingress listener.
    proxy = await start_proxy(api_token=ADMIN, api_public_read=False, ingress_peer="127.0.0.1")
    assert proxy.ingress_port is not None
    headers = {"X-Ingress-Path": "/api/hassio_ingress/abc"}
    async with aiohttp.ClientSession() as session:
        # Through ingress: admin, so past the role check to the handler (no such token: 404).
        url = f"http://127.0.0.1:{proxy.ingress_port}/api/v1/tokens/x"
        async with session.delete(url, headers=headers) as response:
            assert response.status == 404
        # The same header on the direct port is forged: nobody.
        url = f"http://127.0.0.1:{proxy.port}/api/v1/tokens/x"
        async with session.delete(url, headers=headers) as response:
            assert response.status == 401
