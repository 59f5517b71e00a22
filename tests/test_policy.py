"""The policy as data: command classes, rule order, and the limit's charging profiles."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from ocpp.messages import Call, _validate_payload

from ocpp_proxy.config import SchedulePeriod, parse_config
from ocpp_proxy.policy.commands import TABLES, CommandClass, Effect, describe
from ocpp_proxy.policy.decisions import HOMEOWNER, ChargerContext, CommandRequest, RunningSession
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.policy.limits import clear_profile, limit_periods, set_profile, stack_level_query
from ocpp_proxy.policy.rules import HomeownerArbiter
from ocpp_proxy.protocol.schemas import request_schema
from ocpp_proxy.protocol.versions import OcppVersion


def validate(version: OcppVersion, action: str, payload: dict) -> None:
    """Validate a CALL payload with the ocpp library's own schemas (raises on a violation)."""
    _validate_payload(Call("x", action, json.loads(json.dumps(payload))), version.value)


@pytest.mark.parametrize("version", list(OcppVersion))
def test_every_table_entry_is_a_real_action_of_its_version(version: OcppVersion) -> None:
    missing = [action for action in TABLES[version] if request_schema(version, action) is None]
    assert missing == []


def test_unknown_actions_are_charger_wide_changes() -> None:
    assert describe(OcppVersion.V16, "VendorMagic", {}).command_class is CommandClass.CHARGER_WIDE


@pytest.mark.parametrize(
    ("version", "action", "payload", "effect", "connector", "purpose"),
    [
        (
            OcppVersion.V16,
            "RemoteStartTransaction",
            {"idTag": "x", "connectorId": 2},
            Effect.START,
            2,
            None,
        ),
        (
            OcppVersion.V201,
            "RequestStartTransaction",
            {"evseId": 1, "remoteStartId": 1},
            Effect.START,
            1,
            None,
        ),
        (
            OcppVersion.V201,
            "UnlockConnector",
            {"evseId": 2, "connectorId": 1},
            Effect.UNLOCK,
            2,
            None,
        ),
        (
            OcppVersion.V16,
            "SetChargingProfile",
            {
                "connectorId": 0,
                "csChargingProfiles": {"chargingProfilePurpose": "ChargePointMaxProfile"},
            },
            Effect.PROFILE,
            0,
            "ChargePointMaxProfile",
        ),
        (
            OcppVersion.V201,
            "ClearChargingProfile",
            {"chargingProfileCriteria": {"evseId": 1, "chargingProfilePurpose": "TxProfile"}},
            Effect.CLEAR_PROFILE,
            1,
            "TxProfile",
        ),
    ],
)
def test_describe_reads_the_target_of_each_version(
    version: OcppVersion,
    action: str,
    payload: dict,
    effect: Effect,
    connector: int,
    purpose: str | None,
) -> None:
    command = describe(version, action, payload)
    assert (command.effect, command.connector, command.profile_purpose) == (
        effect,
        connector,
        purpose,
    )


def request(requester: str, action: str, payload: dict, **context: object) -> CommandRequest:
    return CommandRequest(
        "CP_1", OcppVersion.V16, requester, action, payload, None, ChargerContext(**context)
    )


def test_rule_order_deny_before_read_only_and_homeowner_past_everything_but_safety() -> None:
    config = parse_config({"disallowed_providers": ["b"], "allow_shared_charging": False})
    arbiter = HomeownerArbiter(config, HomeState(override_api=True))
    assert arbiter.decide(request("b", "GetConfiguration", {})).rule == "provider_denied"
    assert arbiter.decide(request("a", "GetConfiguration", {})).rule == "read_only"
    assert arbiter.decide(request("a", "Reset", {"type": "Soft"})).rule == "shared_charging_off"
    assert arbiter.decide(request(HOMEOWNER, "Reset", {"type": "Soft"})).allowed
    faulted = request(
        HOMEOWNER,
        "RemoteStartTransaction",
        {"idTag": "x", "connectorId": 1},
        connector_status={1: "Faulted"},
    )
    assert arbiter.decide(faulted).rule == "connector_unavailable"


def test_session_owner_rule_reads_the_running_sessions() -> None:
    arbiter = HomeownerArbiter(parse_config({}), HomeState())
    sessions = (RunningSession("42", 1, "a"),)
    stop = CommandRequest(
        "CP_1",
        OcppVersion.V16,
        "b",
        "RemoteStopTransaction",
        {"transactionId": 7},
        "42",
        ChargerContext(sessions=sessions),
    )
    assert arbiter.decide(stop).rule == "session_owner"
    own = CommandRequest(
        "CP_1",
        OcppVersion.V16,
        "a",
        "RemoteStopTransaction",
        {"transactionId": 7},
        "42",
        ChargerContext(sessions=sessions),
    )
    assert arbiter.decide(own).allowed
    other_connector = request("b", "UnlockConnector", {"connectorId": 2}, sessions=sessions)
    assert arbiter.decide(other_connector).allowed


def test_rate_limit_counts_only_commands_it_allows() -> None:
    now = [1000.0]
    config = parse_config({"rate_limit_seconds": 10})
    arbiter = HomeownerArbiter(config, HomeState(), clock=lambda: now[0])
    unlock = request("a", "UnlockConnector", {"connectorId": 1})
    assert arbiter.decide(unlock).allowed
    now[0] += 5
    assert arbiter.decide(unlock).rule == "rate_limit"
    assert arbiter.decide(request("a", "GetConfiguration", {})).allowed
    now[0] += 5
    assert arbiter.decide(unlock).allowed


def test_limit_periods_cap_by_max_current_and_cross_midnight() -> None:
    assert limit_periods(None, ()) is None
    assert limit_periods(10, ()) == [(0, 10)]
    schedule = (SchedulePeriod("22:00", "02:00", 16), SchedulePeriod("12:00", "13:30", 32))
    assert limit_periods(20, schedule) == [
        (0, 16),
        (2 * 3600, 0.0),
        (12 * 3600, 20),
        (13 * 3600 + 1800, 0.0),
        (22 * 3600, 16),
    ]


@pytest.mark.parametrize("version", list(OcppVersion))
@pytest.mark.parametrize("daily", [False, True])
def test_limit_profiles_are_valid_for_the_ocpp_library(version: OcppVersion, daily: bool) -> None:
    now = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=1)))
    action, payload = set_profile(
        version, [(0, 16.04), (3600, 0.0)], stack_level=3, daily=daily, now=now
    )
    validate(version, action, payload)
    if daily:
        schedule = payload.get("csChargingProfiles", payload.get("chargingProfile"))[
            "chargingSchedule"
        ]
        schedule = schedule[0] if isinstance(schedule, list) else schedule
        assert schedule["startSchedule"] == "2026-03-28T23:00:00Z"  # local midnight, in UTC
    validate(version, *clear_profile(version))
    validate(version, *stack_level_query(version))
