"""The card rules of one charger (relay/authorizer.py) and the card book, on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocpp_proxy.config import parse_config
from ocpp_proxy.policy.authorization import HOME, Choice, HomeCard
from ocpp_proxy.relay.authorizer import Authorizer
from ocpp_proxy.relay.cards import CardBook, CardError
from ocpp_proxy.store import Store

OPTIONS = {
    "ocpp_services": [
        {"id": "energy", "url": "ws://e.example/ocpp"},
        {"id": "network", "url": "ws://n.example/ocpp", "share_sessions": "own"},
    ],
    "inbound_backends": [{"id": "fleet", "token": "fleet-token-0123456789"}],
    "id_tag_routes": [{"match": "NL-NET-*", "backend": "network"}],
    "home_cards": [{"id": "HOME-1", "name": "Anna"}],
    "remote_start_window": 60,
    "known_card_days": 10,
}


class Clock:
    """Monotonic and wall time the test moves by hand (s)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "cards.sqlite3")
    yield store
    await store.close()


def make(store: Store, clock: Clock, **options: object) -> Authorizer:
    config = parse_config({**OPTIONS, **options})
    cards = CardBook(config, store, clock=clock)
    return Authorizer(config, cards, clock=clock, wall_clock=clock)


async def test_the_owner_of_a_card_home_first_then_a_recent_acceptance_then_its_route(
    store: Store,
) -> None:
    clock = Clock()
    authorizer = make(store, clock)
    assert authorizer.owner_of_card("HOME-1") == HOME
    assert authorizer.owner_of_card("NL-NET-7") == "network"
    assert authorizer.owner_of_card("OTHER") is None
    authorizer.remember("OTHER", "fleet")
    authorizer.remember("NL-NET-7", "energy")  # the route's backend did not take it
    assert authorizer.owner_of_card("OTHER") == "fleet"
    assert authorizer.owner_of_card("NL-NET-7") == "energy"
    clock.now += 61  # past remote_start_window: the acceptance no longer names the owner
    assert authorizer.owner_of_card("OTHER") is None
    assert authorizer.owner_of_card("NL-NET-7") == "network"


async def test_who_is_asked_and_who_sees_a_session(store: Store) -> None:
    authorizer = make(store, Clock())
    assert not authorizer.asks("energy", "HOME-1")  # nobody is asked about a home card
    assert authorizer.asks("network", "NL-NET-7") and not authorizer.asks("energy", "NL-NET-7")
    assert authorizer.asks("energy", "OTHER") and authorizer.asks("network", "OTHER")
    assert authorizer.may_see("energy", "network")
    assert authorizer.may_see("network", "network")
    assert not authorizer.may_see("network", "energy")
    assert not authorizer.may_see("network", HOME)
    assert authorizer.check("OTHER", ["fleet", "energy"]).order == ("energy", "fleet")


async def test_sessions_keep_their_owner_until_they_end(store: Store) -> None:
    authorizer = make(store, Clock())
    authorizer.own_session("42", "network")
    assert authorizer.session_owner("42") == "network"
    authorizer.end_session("42")
    assert authorizer.session_owner("42") is None


async def test_offline_a_card_is_known_for_known_card_days(store: Store) -> None:
    clock = Clock()
    authorizer = make(store, clock)
    authorizer.cards.accepted("CUSTOMER-1", "network")
    await authorizer.cards.flush()
    assert await authorizer.offline("CUSTOMER-1") == Choice("Accepted", None, "network")
    assert await authorizer.offline("STRANGER") == Choice("Invalid", None, None)
    clock.now += 10 * 86400 + 1
    assert await authorizer.offline("CUSTOMER-1") == Choice("Invalid", None, None)
    assert await authorizer.offline("HOME-1") == Choice("Accepted", None, HOME)


async def test_primary_only_counts_the_primarys_verdict_alone(store: Store) -> None:
    authorizer = make(store, Clock(), authorization="primary_only")
    check = authorizer.check("OTHER", ["energy", "network"])
    check.answers.update({"energy": "Invalid", "network": "Accepted"})
    assert authorizer.choose(check, "energy", []) == Choice("Invalid", "energy", None)
    assert authorizer.choose(check, "energy", ["energy"]) is None


async def test_home_cards_from_the_api_are_kept_and_config_cards_are_not_theirs(
    store: Store,
) -> None:
    clock = Clock()
    authorizer = make(store, clock)
    cards = authorizer.cards
    await cards.add(HomeCard("API-1", "Ben", expires_at=clock.now + 10, source="api"))
    with pytest.raises(CardError):
        await cards.add(HomeCard("HOME-1", "not Anna", source="api"))
    with pytest.raises(CardError):
        await cards.remove("HOME-1")
    assert authorizer.is_home_card("API-1")
    clock.now += 11
    assert not authorizer.is_home_card("API-1")  # expired
    again = CardBook(parse_config(OPTIONS), store)
    await again.load()
    assert [c.id_tag for c in again.home_cards()] == ["HOME-1", "API-1"]
    assert await again.remove("API-1")
    assert not await again.remove("API-1")


def test_home_card_ids_from_the_config_are_masked_in_every_log_line() -> None:
    from ocpp_proxy.security.redaction import configured_secrets, redact

    secrets = configured_secrets(parse_config(OPTIONS))
    assert redact("a frame with HOME-1 in it", secrets) == "a frame with *** in it"
