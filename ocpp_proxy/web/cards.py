"""The homeowner's cards over REST: list, add, remove (``/api/v1/cards``).

Home cards are accepted by the proxy itself, whatever the backends say or whether they are up
(see :mod:`ocpp_proxy.policy.authorization`). Cards from the config's ``home_cards`` are listed
but changed only there (409). Every change goes into the audit log with the card masked; card
ids are personal data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ocpp_proxy.audit import ALLOWED, record_entry
from ocpp_proxy.config import CARD_ID_MAX
from ocpp_proxy.policy.authorization import HomeCard, home_card_valid, mask_card
from ocpp_proxy.policy.decisions import HOMEOWNER
from ocpp_proxy.relay.cards import CardError
from ocpp_proxy.server.keys import CONFIG, REGISTRY
from ocpp_proxy.store import StoreError
from ocpp_proxy.web.control import json_body
from ocpp_proxy.web.errors import ApiError, bad_request


def card_json(card: HomeCard, now: float) -> dict[str, Any]:
    """A home card as the API shows it (to the homeowner: the id in full, and masked)."""
    return {
        "id": card.id_tag,
        "masked": mask_card(card.id_tag),
        "name": card.name,
        "expires": None
        if card.expires_at is None
        else datetime.fromtimestamp(card.expires_at, UTC).isoformat(),
        "valid": home_card_valid(card, now),
        "source": card.source,
    }


async def list_cards(request: web.Request) -> web.Response:
    """``GET /api/v1/cards``: the home cards, and how cards are authorized."""
    config = request.app[CONFIG]
    now = time.time()
    return web.json_response(
        {
            "cards": [card_json(c, now) for c in request.app[REGISTRY].cards.home_cards()],
            "authorization": str(config.authorization),
            "offline_authorization": str(config.offline_authorization),
            "known_card_days": config.known_card_days,
            "home_rate_per_kwh": config.home_rate_per_kwh,
        }
    )


def _expiry(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise bad_request("expires", "expected an ISO 8601 date or date-time, or null")


async def add_card(request: web.Request) -> web.Response:
    """``POST /api/v1/cards {"id", "name"?, "expires"?}``: add or replace a home card."""
    body = await json_body(request)
    id_tag, name = body.get("id"), body.get("name", "")
    if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= CARD_ID_MAX:
        raise bad_request("id", f"expected a card id of 1-{CARD_ID_MAX} characters")
    if not isinstance(name, str) or len(name) > 100:
        raise bad_request("name", "expected a name of at most 100 characters")
    card = HomeCard(id_tag, name, _expiry(body.get("expires")), "api")
    try:
        await request.app[REGISTRY].cards.add(card)
    except CardError as err:
        raise ApiError(409, err.reason, field="id") from None
    except StoreError as err:
        raise ApiError(503, f"the card could not be kept: {err}") from None
    await _audit(request, "AddHomeCard", card)
    return web.json_response(card_json(card, time.time()), status=201)


async def remove_card(request: web.Request) -> web.Response:
    """``DELETE /api/v1/cards/{card_id}``: remove a home card added through the API."""
    id_tag = request.match_info["card_id"]
    try:
        removed = await request.app[REGISTRY].cards.remove(id_tag)
    except CardError as err:
        raise ApiError(409, err.reason, field="card_id") from None
    except StoreError as err:
        raise ApiError(503, f"the card could not be removed: {err}") from None
    if not removed:
        raise ApiError(404, f"no home card {mask_card(id_tag)}", field="card_id")
    await _audit(request, "RemoveHomeCard", HomeCard(id_tag, source="api"))
    return web.json_response({"removed": mask_card(id_tag)})


async def _audit(request: web.Request, action: str, card: HomeCard) -> None:
    what = "added" if action == "AddHomeCard" else "removed"
    await record_entry(
        request.app[REGISTRY].store,
        None,
        actor=HOMEOWNER,
        action=action,
        summary=f"home card {mask_card(card.id_tag)} {what}"
        + (f" ({card.name})" if card.name else ""),
        decision=ALLOWED,
    )
