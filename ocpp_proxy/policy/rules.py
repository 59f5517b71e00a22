"""The homeowner's rules: whether a command may reach the charger, and which rule said so.

The rules are an ordered table; the first that decides, decides. Each rule is a small function
of the request, the command's description and the house's state, so that each reads on its own
and the order is the policy:

1. ``provider_denied``: a backend on the deny list, or off a non-empty allow list, controls nothing.
2. ``read_only``: reading the charger is always allowed.
3. ``shared_charging_off``: with ``allow_shared_charging: false`` backends may only read.
4. ``home_assistant_unreachable``: a configured Home Assistant input that is unknown fails closed.
5. ``override``: while the homeowner's override is on, backends may only read.
6. ``config_changes_not_granted``: charger-wide changes need ``allow_config_changes``.
7. ``homeowner_limit``: nobody but the proxy sets or clears the charger-wide maximum profile.
8. ``connector_unavailable``: no start on a Faulted or Unavailable connector (homeowner too).
9. ``presence``: no backend start while someone is home (``presence_blocks_backends``).
10. ``connector_busy``: no start on a connector another backend's session or start holds.
11. ``session_owner``: only a session's owner stops it, unlocks it or changes its profile.
12. ``rate_limit``: at most one command (not read-only) per backend per ``rate_limit_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.commands import (
    MAX_PROFILE_PURPOSES,
    Command,
    CommandClass,
    Effect,
    describe,
)
from ocpp_proxy.policy.decisions import HOMEOWNER, CommandRequest, Decision, RunningSession
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.policy.limits import HOMEOWNER_PROFILE_ID

_UNAVAILABLE = frozenset({"Faulted", "Unavailable"})


@dataclass(frozen=True, slots=True)
class Case:
    """One command under judgement: the request, what the command does, the house's state."""

    request: CommandRequest
    command: Command
    home: HomeState
    config: ProxyConfig


Rule = Callable[[Case], Decision | None]


def _refuse(rule: str, reason: str) -> Decision:
    return Decision(False, rule, reason)


def provider_denied(case: Case) -> Decision | None:
    """Deny wins; an empty allow list allows every configured backend."""
    requester, config = case.request.requester, case.config
    if requester in config.disallowed_providers:
        return _refuse("provider_denied", f"{requester} is in disallowed_providers")
    if config.allowed_providers and requester not in config.allowed_providers:
        return _refuse("provider_denied", f"{requester} is not in allowed_providers")
    return None


def read_only(case: Case) -> Decision | None:
    """Reading the charger changes nothing: allowed."""
    if case.command.command_class is CommandClass.READ_ONLY:
        return Decision(True, "read_only")
    return None


def shared_charging_off(case: Case) -> Decision | None:
    """Shared charging off (config, or switched at run time): the homeowner keeps control."""
    if not case.home.shared_charging_allowed(case.config.allow_shared_charging):
        return _refuse(
            "shared_charging_off", "allow_shared_charging is off: backends may only read"
        )
    return None


def home_assistant_unreachable(case: Case) -> Decision | None:
    """A configured Home Assistant input that cannot be read counts as the override being on."""
    config = case.config
    unknown = case.home.unreadable(config.override_input_boolean, config.presence_sensor)
    if unknown:
        return _refuse(
            "home_assistant_unreachable",
            f"cannot read {', '.join(unknown)} from Home Assistant: failing closed",
        )
    return None


def override(case: Case) -> Decision | None:
    """The homeowner's override (API or ``override_input_boolean``) is on."""
    if case.home.override_api or case.home.override_ha:
        return _refuse("override", "the homeowner's override is on: backends may only read")
    return None


def config_changes_not_granted(case: Case) -> Decision | None:
    """Only backends with ``allow_config_changes`` change the charger as a whole."""
    if case.command.command_class is not CommandClass.CHARGER_WIDE:
        return None
    trusted = {
        backend.id
        for backend in (*case.config.ocpp_services, *case.config.inbound_backends)
        if backend.allow_config_changes
    }
    if case.request.requester not in trusted:
        return _refuse(
            "config_changes_not_granted",
            f"{case.command.action} changes the whole charger: "
            f"{case.request.requester} has no allow_config_changes",
        )
    return None


def homeowner_limit(case: Case) -> Decision | None:
    """The charger-wide maximum profile is the homeowner's: backends neither set nor clear it."""
    command = case.command
    if command.effect is Effect.PROFILE and command.profile_purpose in MAX_PROFILE_PURPOSES:
        return _refuse("homeowner_limit", "the charger-wide maximum profile is the homeowner's")
    if command.effect is Effect.CLEAR_PROFILE:
        clears_all = (
            command.profile_id is None
            and command.profile_purpose is None
            and command.connector in (None, 0)
        )
        if (
            command.profile_id == HOMEOWNER_PROFILE_ID
            or command.profile_purpose in MAX_PROFILE_PURPOSES
            or clears_all
        ):
            return _refuse("homeowner_limit", "it would clear the homeowner's current limit")
    return None


def connector_unavailable(case: Case) -> Decision | None:
    """A Faulted or Unavailable connector refuses starts, the homeowner's too."""
    if case.command.effect is not Effect.START:
        return None
    statuses = case.request.context.connector_status
    connector = case.command.connector
    targets = [connector] if connector is not None else [c for c in statuses if c != 0]
    if targets and all(statuses.get(c) in _UNAVAILABLE for c in targets):
        where = f"connector {connector}" if connector is not None else "every connector"
        state = statuses.get(targets[0])
        return _refuse("connector_unavailable", f"{where} is {state}")
    if statuses.get(0) in _UNAVAILABLE:
        return _refuse("connector_unavailable", f"the charger is {statuses[0]}")
    return None


def presence(case: Case) -> Decision | None:
    """While someone is home backends may not start sessions (a running one continues)."""
    config = case.config
    if (
        case.command.effect is Effect.START
        and config.presence_sensor
        and config.presence_blocks_backends
        and case.home.someone_home
    ):
        return _refuse("presence", f"someone is home ({config.presence_sensor})")
    return None


def connector_busy(case: Case) -> Decision | None:
    """A connector with another backend's session, or its pending remote start, is taken."""
    if case.command.effect is not Effect.START:
        return None
    requester, context = case.request.requester, case.request.context
    connector = case.command.connector
    single = len([c for c in context.connector_status if c != 0]) <= 1
    for session in context.sessions:
        if session.owner != requester and (
            connector is None or session.connector in (None, connector) or single
        ):
            return _refuse(
                "connector_busy", f"{_whose(session)} session runs on connector {session.connector}"
            )
    for claimed, backend in context.claims.items():
        if backend != requester and (connector is None or claimed in (None, connector) or single):
            return _refuse("connector_busy", f"{backend} is starting a session there")
    return None


def session_owner(case: Case) -> Decision | None:
    """Only a session's owner stops it, unlocks its connector or changes its profile."""
    command = case.command
    if command.effect not in (
        Effect.STOP,
        Effect.UNLOCK,
        Effect.PROFILE,
        Effect.CLEAR_PROFILE,
        Effect.RESERVE,
    ):
        return None
    requester = case.request.requester
    transaction = case.request.transaction
    for session in case.request.context.sessions:
        if session.owner == requester:
            continue
        concerned = (
            session.transaction == transaction
            if transaction is not None
            else command.effect is not Effect.STOP
            and (command.connector in (None, 0) or session.connector == command.connector)
        )
        if concerned:
            return _refuse(
                "session_owner",
                f"{_whose(session)} session on connector {session.connector} is not {requester}'s",
            )
    return None


class RateLimit:
    """At most one command (not read-only) per backend per ``rate_limit_seconds``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def __call__(self, case: Case) -> Decision | None:
        """Refuse a command that comes too soon after the backend's last one; else note it."""
        interval = case.config.rate_limit_seconds
        if not interval:
            return None
        now = self._clock()
        last = self._last.get(case.request.requester)
        if last is not None and now - last < interval:
            wait = interval - (now - last)
            return _refuse("rate_limit", f"one command per {interval} s; try again in {wait:.0f} s")
        self._last[case.request.requester] = now
        return None


def _whose(session: RunningSession) -> str:
    return f"{session.owner}'s" if session.owner else "another"


class HomeownerArbiter:
    """The arbiter of a proxy with a homeowner: the rules of this module, in order.

    Args:
        config: the proxy's configuration (the rules' options).
        home: the homeowner's inputs, read at every decision.
        clock: monotonic time (s), for the rate limit.
    """

    def __init__(
        self, config: ProxyConfig, home: HomeState, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.home = home
        self.rules: tuple[Rule, ...] = (
            provider_denied,
            read_only,
            shared_charging_off,
            home_assistant_unreachable,
            override,
            config_changes_not_granted,
            homeowner_limit,
            connector_unavailable,
            presence,
            connector_busy,
            session_owner,
            RateLimit(clock),
        )

    def decide(self, request: CommandRequest) -> Decision:
        """Return the first decision of the rules, or allow (rule ``allowed``)."""
        case = Case(
            request,
            describe(request.version, request.action, request.payload),
            self.home,
            self.config,
        )
        if request.requester == HOMEOWNER:
            return connector_unavailable(case) or Decision(True, "homeowner")
        for rule in self.rules:
            decision = rule(case)
            if decision is not None:
                return decision
        return Decision(True, "allowed")
