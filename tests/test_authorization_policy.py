"""The card authorization rules as pure functions, and their config keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from ocpp.v16.enums import AuthorizationStatus
from ocpp.v201.enums import AuthorizationStatusEnumType

from ocpp_proxy.config import ConfigError, parse_config
from ocpp_proxy.policy.authorization import (
    ACCEPTED,
    HOME,
    REFUSAL_RANK,
    AuthorizationMode,
    Choice,
    HomeCard,
    IdTagRoute,
    OfflineAuthorization,
    ShareSessions,
    best_refusal,
    card_of,
    choose_answer,
    home_card_valid,
    mask_card,
    may_see_session,
    offline_decision,
    route_for,
    status_of,
)

ORDER = ("energy", "network", "fleet")


def test_every_refusal_status_of_both_versions_is_ranked() -> None:
    statuses = {s.value for s in AuthorizationStatus} | {
        s.value for s in AuthorizationStatusEnumType
    }
    assert statuses - {ACCEPTED} == set(REFUSAL_RANK)


def test_routes_match_exact_ids_and_prefixes_in_order() -> None:
    routes = (
        IdTagRoute("NL-ABC-0001", "fleet"),
        IdTagRoute("NL-ABC-*", "network"),
        IdTagRoute("04A1", "energy"),
    )
    assert route_for("NL-ABC-0001", routes) == "fleet"
    assert route_for("NL-ABC-1234", routes) == "network"
    assert route_for("04A1", routes) == "energy"
    assert route_for("04A12", routes) is None  # exact means exact
    assert route_for("NL-AB", routes) is None


def test_the_primary_wins_when_it_accepts_else_the_first_accepting_in_config_order() -> None:
    assert choose_answer(ORDER, "energy", {"energy": "Accepted", "network": "Accepted"}) == (
        Choice("Accepted", "energy", "energy")
    )
    answers = {"energy": "Invalid", "network": "Accepted", "fleet": "Accepted"}
    assert choose_answer(ORDER, "energy", answers) == Choice("Accepted", "network", "network")
    # The primary need not be first in config order (preferred_provider).
    assert choose_answer(ORDER, "fleet", answers) == Choice("Accepted", "fleet", "fleet")


def test_the_choice_waits_only_for_whom_it_depends_on() -> None:
    # The primary has not answered: its acceptance would win.
    assert choose_answer(ORDER, "energy", {"network": "Accepted"}, {"energy"}) is None
    # An earlier backend in config order may still accept.
    assert choose_answer(ORDER, "fleet", {"fleet": "Invalid"}, {"energy"}) is None
    # A later one cannot change the outcome.
    answers = {"energy": "Invalid", "network": "Accepted"}
    assert choose_answer(ORDER, "energy", answers, {"fleet"}) == Choice(
        "Accepted", "network", "network"
    )
    # At the deadline nobody is waiting: a silent backend counts as no answer.
    assert choose_answer(ORDER, "energy", {"network": "Accepted"}) == Choice(
        "Accepted", "network", "network"
    )
    assert choose_answer(ORDER, "energy", {}) is None  # nobody answered: offline rules


def test_no_acceptance_gives_the_best_refusal_the_primarys_on_a_tie() -> None:
    assert choose_answer(ORDER, "energy", {"energy": "Invalid", "network": "Blocked"}) == Choice(
        "Blocked", "network", None
    )
    assert choose_answer(ORDER, "energy", {"energy": "Invalid", "network": "Invalid"}) == Choice(
        "Invalid", "energy", None
    )
    assert best_refusal(["Invalid", "Expired"]) == "Expired"
    assert best_refusal([]) == "Invalid"


def test_home_cards_expire() -> None:
    card = HomeCard("04A1", "Anna", expires_at=1000.0)
    assert home_card_valid(card, 999.0)
    assert not home_card_valid(card, 1000.0)
    assert home_card_valid(HomeCard("04A1"), 1e12)
    assert not home_card_valid(None, 0.0)


@pytest.mark.parametrize(
    ("policy", "home", "known_by", "expected"),
    [
        (OfflineAuthorization.KNOWN_CARDS, True, None, Choice(ACCEPTED, None, HOME)),
        (OfflineAuthorization.KNOWN_CARDS, False, "network", Choice(ACCEPTED, None, "network")),
        (OfflineAuthorization.KNOWN_CARDS, False, None, Choice("Invalid", None, None)),
        (OfflineAuthorization.HOME_CARDS, False, "network", Choice("Invalid", None, None)),
        (OfflineAuthorization.HOME_CARDS, True, None, Choice(ACCEPTED, None, HOME)),
        (OfflineAuthorization.ALL, False, None, Choice(ACCEPTED, None, None)),
        (OfflineAuthorization.ALL, False, "network", Choice(ACCEPTED, None, "network")),
    ],
)
def test_offline_decisions(
    policy: OfflineAuthorization, home: bool, known_by: str | None, expected: Choice
) -> None:
    card = HomeCard("TAG") if home else None
    assert offline_decision("TAG", policy, home_card=card, known_by=known_by, now=0.0) == expected


def test_an_expired_home_card_is_refused_offline() -> None:
    card = HomeCard("TAG", expires_at=10.0)
    decision = offline_decision(
        "TAG", OfflineAuthorization.HOME_CARDS, home_card=card, known_by=None, now=11.0
    )
    assert decision.status == "Invalid"


def test_a_private_backend_sees_only_its_own_sessions() -> None:
    assert may_see_session(ShareSessions.ALL, "fleet", "energy")
    assert may_see_session(ShareSessions.OWN, "fleet", "fleet")
    assert not may_see_session(ShareSessions.OWN, "fleet", "energy")
    assert not may_see_session(ShareSessions.OWN, "fleet", None)


def test_cards_and_statuses_are_read_from_both_versions() -> None:
    assert card_of("Authorize", {"idTag": "A"}) == "A"
    assert card_of("TransactionEvent", {"idToken": {"idToken": "B", "type": "ISO14443"}}) == "B"
    assert card_of("Heartbeat", {"idTag": "A"}) is None
    assert card_of("Authorize", {"idTag": 7}) is None
    assert status_of({"idTagInfo": {"status": "Blocked"}}) == "Blocked"
    assert status_of({"idTokenInfo": {"status": "Accepted"}}) == "Accepted"
    assert status_of({}) is None


def test_cards_are_masked() -> None:
    assert mask_card("04A2B3C4D5E6") == "04********E6"
    assert mask_card("SHORT") == "*****"
    assert mask_card(None) == ""


# -- config -------------------------------------------------------------------------------

SERVICES = [
    {"id": "energy", "url": "ws://e.example/ocpp"},
    {"id": "network", "url": "ws://n.example/ocpp", "share_sessions": "own"},
]


def test_the_authorization_keys_parse() -> None:
    config = parse_config(
        {
            "ocpp_services": SERVICES,
            "authorization": "primary_only",
            "id_tag_routes": [{"match": "NL-ABC-*", "backend": "network"}],
            "home_cards": [
                {"id": "04A1B2C3", "name": "Anna"},
                {"id": "04FFEE", "expires": "2027-01-31"},
            ],
            "offline_authorization": "all",
            "known_card_days": 7,
        }
    )
    assert config.authorization is AuthorizationMode.PRIMARY_ONLY
    assert config.id_tag_routes == (IdTagRoute("NL-ABC-*", "network"),)
    assert config.home_cards[0] == HomeCard("04A1B2C3", "Anna", None, "config")
    assert config.home_cards[1].expires_at == datetime(2027, 1, 31).timestamp()
    assert config.offline_authorization is OfflineAuthorization.ALL
    assert config.known_card_days == 7.0
    assert [s.share_sessions for s in config.ocpp_services] == [
        ShareSessions.ALL,
        ShareSessions.OWN,
    ]
    # The options round-trip (command-line overrides rebuild the config from them).
    assert config.with_overrides(port=9001).home_cards == config.home_cards
    assert "04A1B2C3" not in repr(config)  # cards are personal data


def test_the_defaults_ask_every_backend_and_accept_known_cards_offline() -> None:
    config = parse_config({})
    assert config.authorization is AuthorizationMode.ANY_BACKEND
    assert config.offline_authorization is OfflineAuthorization.KNOWN_CARDS
    assert config.known_card_days == 30.0
    assert config.id_tag_routes == () and config.home_cards == ()


@pytest.mark.parametrize(
    ("options", "key", "reason"),
    [
        ({"authorization": "anyone"}, "authorization", "any_backend, primary_only"),
        ({"offline_authorization": "none"}, "offline_authorization", "known_cards"),
        ({"known_card_days": 0}, "known_card_days", ">= 0.1"),
        (
            {"id_tag_routes": [{"match": "NL-*", "backend": "nobody"}]},
            "id_tag_routes[0].backend",
            "'nobody' is not the id of a configured service",
        ),
        (
            {"id_tag_routes": [{"match": "NL*X", "backend": "energy"}]},
            "id_tag_routes[0].match",
            "prefix ending in '*'",
        ),
        (
            {"id_tag_routes": [{"match": "*", "backend": "energy"}]},
            "id_tag_routes[0].match",
            "prefix ending in '*'",
        ),
        (
            {
                "id_tag_routes": [
                    {"match": "NL-*", "backend": "energy"},
                    {"match": "NL-*", "backend": "network"},
                ]
            },
            "id_tag_routes[1].match",
            "same match as id_tag_routes[0]",
        ),
        ({"id_tag_routes": [{"backend": "energy"}]}, "id_tag_routes[0].match", "required"),
        ({"home_cards": [{"id": ""}]}, "home_cards[0].id", "1-36 printable characters"),
        ({"home_cards": [{"id": "X" * 37}]}, "home_cards[0].id", "1-36 printable characters"),
        ({"home_cards": [{"id": "A", "expires": "soon"}]}, "home_cards[0].expires", "ISO 8601"),
        (
            {"home_cards": [{"id": "CARD1"}, {"id": "CARD1"}]},
            "home_cards[1].id",
            "same card as an earlier entry",
        ),
        (
            {"ocpp_services": [{**SERVICES[0], "share_sessions": "some"}]},
            "ocpp_services[0].share_sessions",
            "all, own",
        ),
    ],
)
def test_bad_authorization_keys_name_the_entry_and_the_reason(
    options: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"ocpp_services": SERVICES, **options})
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert "CARD1" not in str(caught.value)
