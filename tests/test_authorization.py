"""Whose customer is charging, end to end: cards across backends, with ``ocpp`` library peers.

A charger (the simulator, built on ``ocpp``) taps cards; two CSMS peers (``ocpp``) each know
their own customers' cards. The charger must get the answer of the backend that knows the card,
and that backend owns the session: it alone may stop it, and it gets the revenue.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ocpp_proxy.simulator.charger import SimulatedCharger
from tests.conftest import ConnectCharger, Proxy, StartProxy, service
from tests.peers import Csms, Csms16

NETWORK_CARD = "NET-CARD-0001"  # a customer of the charging network (the second service)
ENERGY_CARD = "ENERGY-CARD-01"  # a customer of the energy provider (the primary)
HOME_CARD = "HOME-CARD-0001"
STRANGER = "STRANGER-00001"
VERSIONS = ("1.6", "2.0.1", "2.1")


def status_of(answer: Any) -> str:
    """The authorization status in a simulator answer (1.6 idTagInfo, 2.x idTokenInfo)."""
    info = getattr(answer, "id_tag_info", None) or getattr(answer, "id_token_info", None)
    return info["status"]


async def owners(proxy: Proxy) -> list[str | None]:
    """The owners of the running sessions, as /status shows them."""
    await proxy.recorded()
    status = await proxy.get_json("/status")
    return [s["owner"] for s in status["chargers"][0]["sessions"]]


async def start_home(
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    version: str,
    *,
    a_cards: dict[str, str] | None = None,
    b_cards: dict[str, str] | None = None,
    services: dict[str, dict[str, Any]] | None = None,
    charger_timeout: float = 10,
    **options: Any,
) -> tuple[Csms, Csms, Proxy, SimulatedCharger]:
    """An energy provider ``a`` (primary) and a charging network ``b``, a booted charger."""
    a = await start_csms("a", version, first_transaction_id=100)
    b = await start_csms("b", version, first_transaction_id=5000)
    a.cards = {} if a_cards is None else a_cards
    b.cards = {} if b_cards is None else b_cards
    services = services or {}
    proxy = await start_proxy(
        ocpp_version=version,
        ocpp_services=[
            service(a, rate_per_kwh=0.30, **services.get("a", {})),
            service(b, rate_per_kwh=0.25, **services.get("b", {})),
        ],
        api_token="authorization-test-token",
        **options,
    )
    charger = await connect_charger(proxy, version=version, response_timeout=charger_timeout)
    await charger.boot()
    await charger.status(1, "Available")
    await a.wait_connected("CP_1")
    await b.wait_connected("CP_1")
    return a, b, proxy, charger


async def stop_by(csms: Csms, version: str, transaction: int | str, backend_tx: int) -> str:
    """``csms`` asks the charger to stop its session; return the answer's status."""
    if version == "1.6":
        command: Any = call16.RemoteStopTransaction(transaction_id=backend_tx)
    else:
        command = call201.RequestStopTransaction(transaction_id=str(transaction))
    return (await csms.call("CP_1", command)).status


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_card_only_the_secondary_accepts_charges_and_the_session_is_the_secondarys(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a, b, proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, version, b_cards={NETWORK_CARD: "Accepted"}
    )
    # The primary does not know the card, the network does: the customer may charge.
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Accepted"
    await a.wait_for_call("Authorize")  # both were asked
    transaction = await charger.start_transaction(1, NETWORK_CARD, 1000)
    start_answer = charger.answers["StartTransaction" if version == "1.6" else "TransactionEvent"]
    assert status_of(start_answer) == "Accepted"  # the owner's idTagInfo, not the primary's
    if version == "1.6":
        assert transaction not in (100, 5000)  # the charger's own id, mapped per backend
    assert await owners(proxy) == ["b"]
    await charger.meter_values(1, transaction, 2500, 7400)

    # The primary may not stop the network's session; the network may.
    assert await stop_by(a, version, transaction, 100) == "Rejected"
    entry = (await proxy.registry.store.audit_entries("CP_1", limit=1))[0]
    assert (entry.actor, entry.rule) == ("a", "session_owner")
    assert await stop_by(b, version, transaction, 5000) == "Accepted"
    await charger.wait_for_command(
        "RemoteStopTransaction" if version == "1.6" else "RequestStopTransaction"
    )
    await charger.wait_background()  # the charger stopped, and its stop was answered
    assert await owners(proxy) == []

    await proxy.recorded()
    sessions = (await proxy.get_json("/api/v1/sessions?token=authorization-test-token"))["sessions"]
    assert [(s["owner"], s["energy_kwh"], s["revenue"]) for s in sessions] == [
        ("b", 1.5, 0.375)  # at the network's rate
    ]


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_card_that_stops_a_session_is_judged_by_the_sessions_owner(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    _a, _b, _proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, version, b_cards={NETWORK_CARD: "Accepted"}
    )
    transaction = await charger.start_transaction(1, NETWORK_CARD, 0)
    answer = await charger.stop_transaction(transaction, 1000, id_tag=NETWORK_CARD)
    assert status_of(answer) == "Accepted"  # the network's verdict; the primary's is Invalid


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_card_the_charger_authorized_itself_belongs_to_whoever_accepts_its_start(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    # No Authorize first (Local Authorization List, authorization cache): the start's answers
    # decide, by the same rule.
    _a, _b, proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, version, b_cards={NETWORK_CARD: "Accepted"}
    )
    await charger.start_transaction(1, NETWORK_CARD, 1000)
    start_answer = charger.answers["StartTransaction" if version == "1.6" else "TransactionEvent"]
    assert status_of(start_answer) == "Accepted"
    assert await owners(proxy) == ["b"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_card_nobody_accepts_is_refused_with_the_most_telling_refusal(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    _a, _b, _proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, version, b_cards={STRANGER: "Blocked"}
    )
    assert status_of(await charger.authorize(ENERGY_CARD)) == "Invalid"
    assert status_of(await charger.authorize(STRANGER)) == "Blocked"  # over a's Invalid


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_authorize_asks_again_a_card_blocked_since_is_refused(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    _a, b, _proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, version, b_cards={NETWORK_CARD: "Accepted"}
    )
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Accepted"
    b.cards = {NETWORK_CARD: "Blocked"}
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Blocked"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_routed_card_is_asked_of_its_backend_only(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a, b, proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        version,
        a_cards={"NL-ABC-0042": "Accepted"},  # would accept it, but is not asked
        b_cards={"NL-ABC-0042": "Accepted"},
        id_tag_routes=[{"match": "NL-ABC-*", "backend": "b"}],
    )
    assert status_of(await charger.authorize("NL-ABC-0042")) == "Accepted"
    assert [c.payload for c in b.calls("Authorize")]
    assert a.calls("Authorize") == []
    rules = (await proxy.get_json("/status"))["rules"]["authorization"]
    assert rules["routes"] == [{"match": "NL-ABC-*", "backend": "b"}]
    assert (rules["mode"], rules["offline"]) == ("any_backend", "known_cards")
    await charger.start_transaction(1, "NL-ABC-0042", 0)
    assert await owners(proxy) == ["b"]
    # The routed backend's acceptance counts for offline authorization too.
    await proxy.registry.cards.flush()
    assert await proxy.registry.cards.known_by("NL-ABC-0042") == "b"


async def backends_down(proxy: Proxy, *csms: Csms) -> None:
    """Stop the CSMS peers and wait until the proxy has seen every link go down."""
    for peer in csms:
        await peer.stop()
    hub = proxy.hub()
    await proxy.registry.changes.wait_for(
        lambda: not any(link.connected or link.opening for link in hub.links.values()), 5
    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_home_card_charges_with_every_backend_down(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a, b, proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        version,
        home_cards=[{"id": HOME_CARD, "name": "Anna"}],
        home_rate_per_kwh=0.20,
    )
    await backends_down(proxy, a, b)
    assert status_of(await charger.authorize(HOME_CARD)) == "Accepted"
    transaction = await charger.start_transaction(1, HOME_CARD, 0)
    assert (
        status_of(charger.answers["StartTransaction" if version == "1.6" else "TransactionEvent"])
        == "Accepted"
    )
    assert await owners(proxy) == ["home"]
    assert proxy.hub().last_card == "HO**********01"
    await charger.stop_transaction(transaction, 2000)
    await proxy.recorded()
    sessions = (await proxy.get_json("/api/v1/sessions?token=authorization-test-token"))["sessions"]
    assert [(s["owner"], s["revenue"], s["home_cost"]) for s in sessions] == [("home", None, 0.4)]


async def test_a_home_card_is_answered_at_once_without_asking_any_backend(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a, b, _proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, "1.6", home_cards=[{"id": HOME_CARD}]
    )
    a.gate = b.gate = None
    assert status_of(await charger.authorize(HOME_CARD)) == "Accepted"
    assert a.calls("Authorize") == b.calls("Authorize") == []


@pytest.mark.parametrize(
    ("offline_authorization", "expected"),
    [("known_cards", "Invalid"), ("home_cards", "Invalid"), ("all", "Accepted")],
)
@pytest.mark.parametrize("version", VERSIONS)
async def test_an_unknown_card_with_every_backend_down(
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    version: str,
    offline_authorization: str,
    expected: str,
) -> None:
    a, b, proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        version,
        offline_authorization=offline_authorization,
    )
    await backends_down(proxy, a, b)
    assert status_of(await charger.authorize(STRANGER)) == expected
    await charger.start_transaction(1, STRANGER, 0)
    start_answer = charger.answers["StartTransaction" if version == "1.6" else "TransactionEvent"]
    assert status_of(start_answer) == expected


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_card_a_backend_accepted_before_charges_offline_and_stays_its_session(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a, b, proxy, charger = await start_home(
        start_csms, start_proxy, connect_charger, version, b_cards={NETWORK_CARD: "Accepted"}
    )
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Accepted"
    await proxy.registry.cards.flush()
    await backends_down(proxy, a, b)
    # known_cards (the default): the network's customer still charges, a stranger does not.
    assert status_of(await charger.authorize(STRANGER)) == "Invalid"
    proxy.hub().authorizer._owners.clear()  # as after a restart: only the store remembers
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Accepted"
    transaction = await charger.start_transaction(1, NETWORK_CARD, 0)
    assert await owners(proxy) == ["b"]
    # The network comes back: its outbox replay carries the session it missed.
    await b.start()
    starts = await b.wait_for_call(
        "StartTransaction" if version == "1.6" else "TransactionEvent", timeout=10
    )
    if version == "1.6":
        assert starts[-1].payload["idTag"] == NETWORK_CARD
    else:
        assert starts[-1].payload["transactionInfo"]["transactionId"] == transaction


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_private_backend_never_sees_another_owners_session(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    a, b, _proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        version,
        a_cards={ENERGY_CARD: "Accepted"},
        b_cards={NETWORK_CARD: "Accepted"},
        services={"b": {"share_sessions": "own"}},
    )
    # The energy provider's customer charges: the private network sees none of it.
    transaction = await charger.start_transaction(1, ENERGY_CARD, 0)
    await charger.meter_values(1, transaction, 1000, 7400)
    await charger.stop_transaction(transaction, 2000)
    # Its own customer's session it sees whole, under its own ids.
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Accepted"
    own = await charger.start_transaction(1, NETWORK_CARD, 2000)
    await charger.meter_values(1, own, 3000, 7400)
    await charger.stop_transaction(own, 4000)
    session_actions = (
        {"StartTransaction", "MeterValues", "StopTransaction"}
        if version == "1.6"
        else {"TransactionEvent"}
    )
    await b.wait_until(lambda: len([c for c in b.calls() if c.action in session_actions]) == 3)
    seen = [c for c in b.calls() if c.action in session_actions]
    cards = {c.payload.get("idTag") or c.payload.get("idToken", {}).get("idToken") for c in seen}
    assert cards <= {NETWORK_CARD, None}
    if version == "1.6":
        assert [c.action for c in seen] == ["StartTransaction", "MeterValues", "StopTransaction"]
        assert {c.payload.get("transactionId") for c in seen[1:]} == {5000}
    else:
        assert {c.payload["transactionInfo"]["transactionId"] for c in seen} == {own}
    # Charger-wide messages it still gets; the energy provider sees everything.
    assert [c.action for c in b.calls()][:2] == ["BootNotification", "StatusNotification"]
    await a.wait_until(lambda: len([c for c in a.calls() if c.action in session_actions]) == 6)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_silent_primary_does_not_hold_the_answer_past_response_timeout(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    # The charger gives up on a CALL after response_timeout (2 s) + 1 s: it must have the
    # network's acceptance before that.
    a, _b, _proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        version,
        b_cards={NETWORK_CARD: "Accepted"},
        response_timeout=2,
        charger_timeout=3,
    )
    a.gate = asyncio.Event()  # the primary stops answering
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Accepted"
    a.gate.set()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_silent_secondary_does_not_hold_a_refusal_past_response_timeout(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger, version: str
) -> None:
    _a, b, _proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        version,
        response_timeout=2,
        charger_timeout=3,
    )
    b.gate = asyncio.Event()  # the network stops answering; the primary does not know the card
    assert status_of(await charger.authorize(STRANGER)) == "Invalid"
    b.gate.set()


async def test_primary_only_lets_the_primary_alone_decide(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    _a, _b, _proxy, charger = await start_home(
        start_csms,
        start_proxy,
        connect_charger,
        "1.6",
        a_cards={ENERGY_CARD: "Accepted"},
        b_cards={NETWORK_CARD: "Accepted"},
        authorization="primary_only",
    )
    assert status_of(await charger.authorize(NETWORK_CARD)) == "Invalid"
    assert status_of(await charger.authorize(ENERGY_CARD)) == "Accepted"


async def test_an_inbound_backend_accepts_after_the_services_in_config_order(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:

    a = await start_csms("a")
    a.cards = {}
    proxy = await start_proxy(
        ocpp_services=[service(a)],
        inbound_backends=[{"id": "fleet", "token": "fleet-token-0123456789", "rate_per_kwh": 0.4}],
    )
    charger = await connect_charger(proxy)
    await charger.boot()
    await a.wait_connected("CP_1")
    # The fleet manager dials in as a CSMS that knows its drivers' cards.
    fleet = Csms("fleet")
    fleet.cards = {"FLEET-CARD-01": "Accepted"}
    async with websockets.connect(
        f"{proxy.base}/backend?id=fleet&charge_point_id=CP_1&token=fleet-token-0123456789",
        subprotocols=["ocpp1.6"],
    ) as socket:
        peer = Csms16("CP_1", socket, response_timeout=5)
        peer.csms = fleet
        runner = asyncio.ensure_future(peer.start())
        try:
            await proxy.registry.changes.wait_for(lambda: proxy.hub().links["fleet"].connected, 5)
            assert status_of(await charger.authorize("FLEET-CARD-01")) == "Accepted"
            await charger.start_transaction(1, "FLEET-CARD-01", 0)
            assert await owners(proxy) == ["fleet"]
        finally:
            runner.cancel()
    assert [c.action for c in fleet.calls("Authorize")] == ["Authorize"]
