"""Read-only endpoints of the REST API: chargers, sessions, energy, audit and message logs."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.server.keys import CONFIG, METRICS, REGISTRY
from ocpp_proxy.web.errors import ApiError, bad_request
from ocpp_proxy.web.export import (
    ENERGY_COLUMNS,
    SESSION_COLUMNS,
    energy_dict,
    session_dict,
    to_csv,
)
from ocpp_proxy.web.live import live_sessions, summarize
from ocpp_proxy.web.query import choice_param, int_param, time_param, wants_csv

#: The most rows one request returns.
MAX_LIMIT = 10000


def _attachment(text: str, content_type: str, filename: str) -> web.Response:
    return web.Response(
        text=text,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def chargers(request: web.Request) -> web.Response:
    """``GET /api/v1/chargers``: every charger seen, first and last seen, online."""
    rows = await request.app[REGISTRY].store.chargers()
    return web.json_response(
        {
            "chargers": [
                {
                    "id": row.id,
                    "vendor": row.vendor,
                    "model": row.model,
                    "serial": row.serial,
                    "firmware": row.firmware,
                    "first_seen": iso_utc(row.first_seen),
                    "last_seen": iso_utc(row.last_seen),
                    "online": row.online,
                }
                for row in rows
            ]
        }
    )


async def sessions(request: web.Request) -> web.Response:
    """``GET /api/v1/sessions``: filtered, paged, as JSON or CSV (``?format=``)."""
    config = request.app[CONFIG]
    csv_wanted = wants_csv(request)
    limit = int_param(request, "limit", 100, maximum=MAX_LIMIT)
    offset = int_param(request, "offset", 0, maximum=10**9)
    since = time_param(request, "from")
    until = time_param(request, "to", end_of_day=True)
    rows = await request.app[REGISTRY].store.sessions(
        charge_point_id=request.query.get("charger") or None,
        owner=request.query.get("owner") or None,
        backend=request.query.get("backend") or None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    now = time.time()
    items = [session_dict(config, row, now) for row in rows]
    if csv_wanted:
        return _attachment(to_csv(items, SESSION_COLUMNS), "text/csv", "sessions.csv")
    if request.query.get("format") == "json":
        return _attachment(json.dumps(items), "application/json", "sessions.json")
    return web.json_response({"sessions": items, "limit": limit, "offset": offset})


async def session(request: web.Request) -> web.Response:
    """``GET /api/v1/sessions/{session_id}``: one session with its meter samples."""
    try:
        session_id = int(request.match_info["session_id"])
    except ValueError:
        raise bad_request("session_id", "expected an integer") from None
    store = request.app[REGISTRY].store
    row = await store.session(session_id)
    if row is None:
        raise ApiError(404, f"no session {session_id}", field="session_id")
    samples = await store.session_samples(session_id)
    body: dict[str, Any] = session_dict(request.app[CONFIG], row, time.time())
    live = summarize(samples, row.meter_start_wh)
    body["power_w"] = live["power_w"] if row.is_open else None
    if row.energy_kwh is None:
        body["energy_so_far_kwh"] = live["energy_kwh"]
    body["samples"] = [
        {
            "at": iso_utc(s.at),
            "measurand": s.measurand,
            "phase": s.phase,
            "value": s.value,
            "unit": s.unit,
            "context": s.context,
        }
        for s in samples
    ]
    return web.json_response(body)


async def energy(request: web.Request) -> web.Response:
    """``GET /api/v1/insights/energy``: energy, revenue and home cost per period."""
    config = request.app[CONFIG]
    csv_wanted = wants_csv(request)
    period = choice_param(request, "period", ("day", "week", "month"))
    totals = await request.app[REGISTRY].store.energy_totals(
        period,
        since=time_param(request, "from"),
        until=time_param(request, "to", end_of_day=True),
        charge_point_id=request.query.get("charger") or None,
    )
    items = [energy_dict(config, total) for total in totals]
    if csv_wanted:
        return _attachment(to_csv(items, ENERGY_COLUMNS), "text/csv", f"energy-{period}.csv")
    return web.json_response(
        {
            "period": period,
            "home_rate_per_kwh": config.home_rate_per_kwh,
            "home_currency": config.home_currency,
            "totals": items,
        }
    )


async def audit(request: web.Request) -> web.Response:
    """``GET /api/v1/audit``: the audit log, newest first (``?charger=``, ``?limit=``)."""
    rows = await request.app[REGISTRY].store.audit_entries(
        request.query.get("charger") or None, int_param(request, "limit", 100, maximum=MAX_LIMIT)
    )
    return web.json_response(
        {
            "entries": [
                {
                    "id": row.id,
                    "charge_point_id": row.charge_point_id,
                    "at": iso_utc(row.at),
                    "actor": row.actor,
                    "action": row.action,
                    "summary": row.summary,
                    "decision": row.decision,
                    "rule": row.rule,
                    "reason": row.reason,
                    "answer": row.answer,
                }
                for row in rows
            ]
        }
    )


async def messages(request: web.Request) -> web.Response:
    """``GET /api/v1/chargers/{charge_point_id}/messages``: its OCPP message log, newest first."""
    charge_point_id = request.match_info["charge_point_id"]
    registry = request.app[REGISTRY]
    if not await registry.exists(charge_point_id):
        raise ApiError(404, f"no charger {charge_point_id}", field="charge_point_id")
    rows = await registry.store.messages(
        charge_point_id, int_param(request, "limit", 100, maximum=MAX_LIMIT)
    )
    return web.json_response(
        {
            "messages": [
                {
                    "id": row.id,
                    "at": iso_utc(row.at),
                    "peer": row.peer,
                    "direction": row.direction,
                    "message_type": row.message_type,
                    "action": row.action,
                    "unique_id": row.unique_id,
                    "frame": row.frame,
                }
                for row in rows
            ]
        }
    )


async def live(request: web.Request) -> web.Response:
    """``GET /api/v1/live``: each running session's power, energy, duration and owner."""
    return web.json_response({"sessions": await live_sessions(request.app[REGISTRY])})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: the proxy's counters and gauges in the Prometheus text format."""
    return web.Response(
        body=request.app[METRICS].render().encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
