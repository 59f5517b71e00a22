"""The homeowner's cards over REST (``/api/v1/cards``): token-protected, audited, kept."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import StartProxy
from tests.test_api import request

TOKEN = "cards-api-token-0123456789"


async def test_cards_are_added_listed_and_removed_with_the_token_and_audited(
    start_proxy: StartProxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await start_proxy(
        api_token=TOKEN,
        home_cards=[{"id": "CONFIGCARD01", "name": "Anna"}],
        offline_authorization="home_cards",
    )
    # Personal data: the list needs the token even where other reads are public.
    status, body, _ = await request(proxy, "GET", "/api/v1/cards")
    assert status == 401
    status, body, _ = await request(
        proxy, "POST", "/api/v1/cards", body={"id": "04A1B2C3D4E5"}, token=None
    )
    assert status == 401

    caplog.set_level(logging.INFO)
    status, body, _ = await request(
        proxy,
        "POST",
        "/api/v1/cards",
        body={"id": "04A1B2C3D4E5", "name": "Ben", "expires": "2030-01-01T00:00:00+00:00"},
        token=TOKEN,
    )
    assert status == 201, body
    assert body["masked"] == "04********E5" and body["valid"] is True

    status, body, _ = await request(proxy, "GET", "/api/v1/cards", token=TOKEN)
    assert status == 200
    assert [(c["id"], c["name"], c["source"]) for c in body["cards"]] == [
        ("CONFIGCARD01", "Anna", "config"),
        ("04A1B2C3D4E5", "Ben", "api"),
    ]
    assert body["cards"][1]["expires"] == "2030-01-01T00:00:00+00:00"
    assert body["offline_authorization"] == "home_cards"

    # Config cards are changed in the config only.
    status, body, _ = await request(proxy, "DELETE", "/api/v1/cards/CONFIGCARD01", token=TOKEN)
    assert status == 409 and "config" in body["error"]
    status, body, _ = await request(proxy, "DELETE", "/api/v1/cards/04A1B2C3D4E5", token=TOKEN)
    assert status == 200
    status, body, _ = await request(proxy, "DELETE", "/api/v1/cards/04A1B2C3D4E5", token=TOKEN)
    assert status == 404

    audit = await proxy.registry.store.audit_entries(limit=20)
    changes = [(a.actor, a.action, a.summary) for a in reversed(audit) if a.actor == "homeowner"]
    assert changes == [
        ("homeowner", "AddHomeCard", "home card 04********E5 added (Ben)"),
        ("homeowner", "RemoveHomeCard", "home card 04********E5 removed"),
    ]
    # Every audit line (the requests' own too) shows the card masked, never in full.
    assert not any("04A1B2C3D4E5" in a.summary or "CONFIGCARD01" in a.summary for a in audit)
    # Neither the proxy's log nor the access log carries the card in full.
    assert "04A1B2C3D4E5" not in caplog.text
    assert "04********E5" in caplog.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "id"),
        ({"id": ""}, "id"),
        ({"id": "X" * 37}, "id"),
        ({"id": "ABC", "name": 5}, "name"),
        ({"id": "ABC", "expires": "someday"}, "expires"),
        ([1], "body"),
    ],
)
async def test_bad_cards_are_refused_naming_the_field(
    start_proxy: StartProxy, body: Any, field: str
) -> None:
    proxy = await start_proxy(api_token=TOKEN)
    status, answer, _ = await request(proxy, "POST", "/api/v1/cards", body=body, token=TOKEN)
    assert (status, answer["field"]) == (400, field)


async def test_cards_added_through_the_api_survive_a_restart(
    start_proxy: StartProxy, tmp_path: Any
) -> None:
    data_dir = str(tmp_path / "kept")
    proxy = await start_proxy(api_token=TOKEN, data_dir=data_dir)
    status, _, _ = await request(
        proxy, "POST", "/api/v1/cards", body={"id": "KEPTCARD99"}, token=TOKEN
    )
    assert status == 201
    await proxy.stop()
    again = await start_proxy(api_token=TOKEN, data_dir=data_dir)
    _, body, _ = await request(again, "GET", "/api/v1/cards", token=TOKEN)
    assert [c["id"] for c in body["cards"]] == ["KEPTCARD99"]


async def test_the_openapi_document_lists_the_cards_routes(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(api_token=TOKEN)
    _, document, _ = await request(proxy, "GET", "/api/v1/openapi.json")
    paths = document["paths"]
    assert set(paths["/api/v1/cards"]) == {"get", "post"}
    assert set(paths["/api/v1/cards/{card_id}"]) == {"delete"}
    assert "401" in paths["/api/v1/cards"]["get"]["responses"]
