"""The homeowner's rules end to end: the ocpp library as charger and two CSMS peers.

For each rule: the refused backend sees a schema-valid refusal, the charger never sees the
command, and the audit log says which rule refused it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ocpp_proxy.simulator.charger import SimulatedCharger
from tests.conftest import ConnectCharger, Proxy, StartProxy, service
from tests.peers import Csms

START = call16.RemoteStartTransaction(id_tag="APP", connector_id=1)


@pytest.fixture
async def house(start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger) -> Any:
    """Two CSMSs (a, b), the proxy with the options given, a booted charger."""

    async def make(**options: Any) -> tuple[Csms, Csms, Proxy, SimulatedCharger]:
        a = await start_csms("a", first_transaction_id=100)
        b = await start_csms("b", first_transaction_id=5000)
        services = options.pop("services", {})
        proxy = await start_proxy(
            ocpp_services=[
                service(a, **services.get("a", {})),
                service(b, **services.get("b", {})),
            ],
            **options,
        )
        charger = await connect_charger(proxy)
        await charger.boot()
        await charger.status(1, "Available")
        await a.wait_connected("CP_1")
        await b.wait_connected("CP_1")
        return a, b, proxy, charger

    return make


async def last_audit(proxy: Proxy) -> Any:
    return (await proxy.registry.store.audit_entries("CP_1", limit=1))[0]


async def assert_refused(
    proxy: Proxy, charger: SimulatedCharger, rule: str, actor: str, seen: int = 0
) -> None:
    """The last decision refused ``actor`` by ``rule``, and the charger saw no new command."""
    entry = await last_audit(proxy)
    assert (entry.actor, entry.decision, entry.rule) == (actor, "refused", rule)
    assert entry.reason
    assert len(charger.received) == seen, charger.received


async def remote_session(csms: Csms, charger: SimulatedCharger) -> str:
    """Start a session from ``csms``; return the charger-side transaction id."""
    assert (await csms.call("CP_1", START)).status == "Accepted"
    await charger.wait_for_command("RemoteStartTransaction")
    await charger.wait_background()
    return str(charger.transaction_id)


async def limit_accepted(proxy: Proxy) -> None:
    """Wait until the charger has answered the homeowner's limit with Accepted."""
    await proxy.registry.changes.wait_for(
        lambda: (hub := proxy.registry.get("CP_1")) and hub.limits.state["status"] == "Accepted",
        5,
    )


async def post(proxy: Proxy, path: str, body: Any) -> tuple[int, Any]:
    return await proxy.post_json(path, body)


async def test_denied_provider_controls_nothing(house: Any) -> None:
    a, b, proxy, charger = await house(disallowed_providers=["b"])
    assert (await b.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "provider_denied", "b")
    with pytest.raises(OCPPError):  # no control at all: GetConfiguration has no Rejected
        await b.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    assert charger.received == []
    assert (await a.call("CP_1", START)).status == "Accepted"


async def test_allow_list_admits_only_its_members_and_deny_wins(house: Any) -> None:
    a, b, proxy, charger = await house(allowed_providers=["a", "b"], disallowed_providers=["a"])
    assert (await a.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "provider_denied", "a")
    assert (await b.call("CP_1", START)).status == "Accepted"


async def test_shared_charging_off_leaves_backends_read_only(house: Any) -> None:
    a, _b, proxy, charger = await house(allow_shared_charging=False)
    assert (await a.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "shared_charging_off", "a")
    answer = await a.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    assert answer.configuration_key[0]["key"] == "HeartbeatInterval"


async def test_override_from_the_api_refuses_all_but_read_only_until_lifted(house: Any) -> None:
    a, _b, proxy, charger = await house()
    status, body = await post(proxy, "/override", {"enabled": True})
    assert status == 200 and body["enabled"] and body["api"]
    assert (await a.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "override", "a")
    assert (
        await a.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    ).configuration_key
    # The homeowner's own commands still pass.
    result = await proxy.hub().homeowner_command("UnlockConnector", {"connectorId": 1})
    assert result.answer is not None and result.answer.payload == {"status": "Unlocked"}
    assert (await proxy.get_json("/override"))["enabled"] is True
    await post(proxy, "/override", {"enabled": False})
    assert (await a.call("CP_1", START)).status == "Accepted"
    assert (await post(proxy, "/override", {"enabled": "yes"}))[0] == 400


async def test_presence_blocks_backend_starts_but_not_the_running_session(house: Any) -> None:
    a, _b, proxy, charger = await house(presence_sensor="binary_sensor.someone_home")
    home = proxy.registry.home
    home.ha_connected = True
    home.set_presence_state("off")
    home.set_override_state(None)
    transaction = await remote_session(a, charger)
    home.set_presence_state("home")
    assert (
        await a.call("CP_1", call16.RemoteStartTransaction(id_tag="X", connector_id=2))
    ).status == ("Rejected")
    await assert_refused(proxy, charger, "presence", "a", seen=1)
    # The running session continues and its owner may still stop it.
    stop = await a.call("CP_1", call16.RemoteStopTransaction(transaction_id=100))
    assert stop.status == "Accepted"
    assert (await charger.wait_for_command("RemoteStopTransaction"))["transactionId"] == int(
        transaction
    )


async def test_presence_does_not_block_when_switched_off(house: Any) -> None:
    a, _b, proxy, _charger = await house(
        presence_sensor="person.me", presence_blocks_backends=False
    )
    proxy.registry.home.ha_connected = True
    proxy.registry.home.set_presence_state("home")
    assert (await a.call("CP_1", START)).status == "Accepted"


async def test_home_assistant_unreachable_fails_closed_and_status_says_so(house: Any) -> None:
    a, _b, proxy, charger = await house(override_input_boolean="input_boolean.no_sharing")
    assert (await a.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "home_assistant_unreachable", "a")
    assert (
        await a.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    ).configuration_key
    rules = (await proxy.get_json("/status"))["rules"]
    assert rules["override"]["fail_closed"] is True
    assert rules["override"]["unreadable"] == ["input_boolean.no_sharing"]
    # Home Assistant back, the input_boolean off: backends may start again.
    proxy.registry.home.ha_connected = True
    proxy.registry.home.set_override_state("off")
    assert (await a.call("CP_1", START)).status == "Accepted"


async def test_rate_limit_allows_one_command_per_interval(house: Any) -> None:
    a, _b, proxy, charger = await house(
        rate_limit_seconds=60, services={"a": {"allow_config_changes": True}}
    )
    change = call16.ChangeConfiguration(key="HeartbeatInterval", value="60")
    assert (await a.call("CP_1", change)).status == "Accepted"
    assert (await a.call("CP_1", change)).status == "Rejected"
    await assert_refused(proxy, charger, "rate_limit", "a", seen=1)
    # Reading is not limited.
    assert (
        await a.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    ).configuration_key


async def test_only_the_owner_stops_unlocks_or_profiles_its_session(house: Any) -> None:
    a, b, proxy, charger = await house()
    transaction = await remote_session(a, charger)
    sessions = (await proxy.get_json("/status"))["chargers"][0]["sessions"]
    assert sessions == [{"transaction_id": transaction, "connector": 1, "owner": "a"}]
    assert (await b.call("CP_1", call16.RemoteStopTransaction(transaction_id=5000))).status == (
        "Rejected"
    )
    await assert_refused(proxy, charger, "session_owner", "b", seen=1)
    with pytest.raises(OCPPError, match="session_owner"):
        await b.call("CP_1", call16.UnlockConnector(connector_id=1))
    assert len(charger.received) == 1
    profile = call16.SetChargingProfile(
        connector_id=1,
        cs_charging_profiles={
            "chargingProfileId": 7,
            "transactionId": 5000,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}],
            },
        },
    )
    assert (await b.call("CP_1", profile)).status == "Rejected"
    await assert_refused(proxy, charger, "session_owner", "b", seen=1)
    # Another backend may not start on the busy connector either.
    assert (await b.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "connector_busy", "b", seen=1)
    # The owner may, and so may the homeowner.
    assert (await a.call("CP_1", call16.RemoteStopTransaction(transaction_id=100))).status == (
        "Accepted"
    )
    assert (await charger.wait_for_command("RemoteStopTransaction"))["transactionId"] == int(
        transaction
    )
    await charger.wait_background()  # the charger's StopTransaction was answered
    assert (await proxy.get_json("/status"))["chargers"][0]["sessions"] == []


async def test_two_backends_racing_to_start_the_preferred_one_wins(house: Any) -> None:
    a, b, proxy, charger = await house(preferred_provider="b", start_race_window=0.3)
    answer_a, answer_b = await asyncio.gather(a.call("CP_1", START), b.call("CP_1", START))
    assert (answer_a.status, answer_b.status) == ("Rejected", "Accepted")
    await charger.wait_background()
    starts = [action for action, _ in charger.received if action == "RemoteStartTransaction"]
    assert starts == ["RemoteStartTransaction"]
    audit = await proxy.registry.store.audit_entries("CP_1")
    assert {(e.actor, e.rule) for e in audit} >= {("a", "start_race"), ("b", "allowed")}
    (session,) = (await proxy.get_json("/status"))["chargers"][0]["sessions"]
    assert session["owner"] == "b"


async def test_charger_wide_changes_only_from_a_granted_backend(house: Any) -> None:
    a, b, proxy, charger = await house(services={"a": {"allow_config_changes": True}})
    change = call16.ChangeConfiguration(key="MeterValueSampleInterval", value="30")
    assert (await b.call("CP_1", change)).status == "Rejected"
    await assert_refused(proxy, charger, "config_changes_not_granted", "b")
    assert (await b.call("CP_1", call16.Reset(type="Hard"))).status == "Rejected"
    # An action the table does not know counts as a charger-wide change.
    await b.connections["CP_1"].route_message('[2,"v1","VendorMagic",{}]')
    assert charger.received == []
    assert (await a.call("CP_1", change)).status == "Accepted"
    assert (await charger.wait_for_command("ChangeConfiguration"))[
        "key"
    ] == "MeterValueSampleInterval"


async def test_faulted_connector_refuses_starts_and_a_fault_in_a_session_is_reported(
    house: Any,
) -> None:
    a, _b, proxy, charger = await house()
    transaction = await remote_session(a, charger)
    await charger.status(1, "Faulted")
    alerts = (await proxy.get_json("/status"))["chargers"][0]["alerts"]
    assert alerts and alerts[0]["owner"] == "a" and alerts[0]["transaction_id"] == transaction
    await charger.stop_transaction(int(transaction), 1000, reason="Other")
    assert (await a.call("CP_1", START)).status == "Rejected"
    await assert_refused(proxy, charger, "connector_unavailable", "a", seen=1)
    result = await proxy.hub().homeowner_command(
        "RemoteStartTransaction", {"idTag": "ME", "connectorId": 1}
    )
    assert result.decision.rule == "connector_unavailable" and result.answer is None


async def test_homeowner_limit_is_held_by_the_charger_and_backends_cannot_touch_it(
    house: Any,
) -> None:
    a, _b, proxy, charger = await house(max_current_a=16)

    def held() -> dict[str, Any] | None:
        return charger.charging_profiles.get(("ChargePointMaxProfile", 10))

    await limit_accepted(proxy)
    profile = held()
    assert profile is not None
    assert (charger.charging_profile_targets[("ChargePointMaxProfile", 10)]) == 0
    periods = profile["chargingSchedule"]["chargingSchedulePeriod"]
    assert (profile["chargingSchedule"]["chargingRateUnit"], periods) == (
        "A",
        [{"startPeriod": 0, "limit": 16.0}],
    )
    status, body = await post(proxy, "/max_current", {"max_current_a": 6})
    assert status == 200 and body["max_current_a"] == 6
    assert held()["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6.0
    assert body["chargers"]["CP_1"]["status"] == "Accepted"

    seen = len(charger.received)
    steal = call16.SetChargingProfile(
        connector_id=0,
        cs_charging_profiles={
            "chargingProfileId": 1,
            "stackLevel": 10,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}],
            },
        },
    )
    assert (await a.call("CP_1", steal)).status == "Rejected"
    await assert_refused(proxy, charger, "homeowner_limit", "a", seen=seen)
    with pytest.raises(OCPPError, match="homeowner_limit"):
        await a.call("CP_1", call16.ClearChargingProfile())
    assert held()["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6.0

    await post(proxy, "/max_current", {"max_current_a": None})
    assert held() is None
    assert (await post(proxy, "/max_current", {"max_current_a": -1}))[0] == 400


async def test_daily_schedule_becomes_a_recurring_charger_wide_profile(house: Any) -> None:
    _a, _b, proxy, charger = await house(
        charging_schedule=[{"start": "22:00", "end": "06:00", "max_current_a": 16}]
    )
    await limit_accepted(proxy)
    profile = charger.charging_profiles[("ChargePointMaxProfile", 10)]
    assert (profile["chargingProfileKind"], profile["recurrencyKind"]) == ("Recurring", "Daily")
    periods = profile["chargingSchedule"]["chargingSchedulePeriod"]
    assert periods == [
        {"startPeriod": 0, "limit": 16.0},
        {"startPeriod": 6 * 3600, "limit": 0.0},
        {"startPeriod": 22 * 3600, "limit": 16.0},
    ]


async def test_201_limit_is_a_charging_station_max_profile(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", "2.0.1")
    proxy = await start_proxy(ocpp_version="2.0.1", ocpp_services=[service(a)], max_current_a=20)
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    await limit_accepted(proxy)
    profile = charger.charging_profiles[("ChargingStationMaxProfile", 10)]
    assert profile["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 20.0}
    ]
    steal = call201.SetChargingProfile(
        evse_id=0,
        charging_profile={
            "id": 5,
            "stackLevel": 10,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32}],
                }
            ],
        },
    )
    assert (await a.call("CP_1", steal)).status == "Rejected"
