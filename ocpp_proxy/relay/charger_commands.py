"""Commands on their way to the charger: from backends, and from the homeowner.

A backend's CALL has its 1.6 transaction id translated to the charger's, is checked against the
OCPP schema, passes the arbiter (racing remote starts are settled here) and the audit log, and
waits its turn in the command queue; the answer goes back under the backend's own unique id
(OCPP-J 1.6 §4.1.1). The homeowner's commands (web page, REST API, Home Assistant) take the same
way as the homeowner. This is one half of :class:`~ocpp_proxy.relay.hub.ChargerHub`: the half
that carries frames to the charger.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocpp_proxy.audit import record_command
from ocpp_proxy.protocol.frames import (
    CALLRESULT,
    Frame,
    build_call,
    build_call_error,
    build_call_result,
    parse_frame,
    with_unique_id,
)
from ocpp_proxy.protocol.local_csms import refusal
from ocpp_proxy.relay.arbiter import HOMEOWNER, ChargerContext, CommandRequest, Decision
from ocpp_proxy.relay.backend_link import BackendLink
from ocpp_proxy.relay.command_queue import Command
from ocpp_proxy.relay.transaction_ids import rewrite_transaction_id
from ocpp_proxy.security.schema import check_request

if TYPE_CHECKING:
    from ocpp_proxy.relay.hub import ChargerHub

_LOGGER = logging.getLogger(__name__)

#: OCPP 1.6 commands that name a transaction id the backend assigned (§5.12, §5.16).
_COMMANDS_NAMING_TRANSACTION_16 = frozenset({"RemoteStopTransaction", "SetChargingProfile"})
#: Remote starts (OCPP 1.6 §5.11; 2.0.1 F01), which race for a connector.
_START_ACTIONS = frozenset({"RemoteStartTransaction", "RequestStartTransaction"})


class ChargerCommands:
    """The charger-bound half of :class:`~ocpp_proxy.relay.hub.ChargerHub` (a mixin of it)."""

    async def on_backend_send(self: ChargerHub, link: BackendLink, frame: Frame) -> None:
        """An OCPP 2.1 SEND from a backend: to the charger at once, if the arbiter allows it."""
        decision = self.arbiter.decide(
            CommandRequest(self.id, self.version, link.id, frame.action or "", frame.payload or {})
        )
        if self.charger is None or not decision.allowed:
            _LOGGER.info("%s: SEND %s from %s dropped", self.id, frame.action, link.id)
            return
        await self._send_to_charger(frame.raw)

    async def on_backend_call(self: ChargerHub, link: BackendLink, frame: Frame) -> None:
        """A backend's command for the charger: map ids, arbitrate, queue (OCPP-J 1.6 §4.1.1).

        Every command, passed or refused, goes to the audit log with the rule that decided.
        """
        action = frame.action or ""
        payload = frame.payload or {}
        if self.charger is None:
            reason = f"charge point {self.id} is not connected"
            await self._audit(link.id, frame, Decision(False, "charger_offline", reason), None)
            await link.send(
                build_call_error(frame.unique_id, self.version.facts.generic_error, reason)
            )
            return
        violation = check_request(self.version, action, payload)
        if violation is not None:
            # The charger never sees a command that breaks its version's schema: the backend
            # hears what is wrong (OCPP-J 1.6 §4.2.3 codes), the audit log says rule "schema".
            self.metrics.inc("ocpp_proxy_schema_violations_total", peer="backend", action=action)
            decision = Decision(False, "schema", violation.description)
            _LOGGER.info(
                "%s: %s from %s refused: %s %s",
                self.id,
                action,
                link.id,
                violation.code,
                violation.description,
            )
            text = build_call_error(frame.unique_id, violation.code, violation.description)
            await self._audit(link.id, frame, decision, parse_frame(text))
            await link.send(text)
            return
        text, transaction = frame.raw, _named_transaction(payload)
        if not self.version.facts.charger_assigns_transaction_id:
            translated = self._translate_16(link, frame)
            if translated is None:
                reason = "the transactionId names no transaction of this backend"
                await self._refuse(link, frame, Decision(False, "unknown_transaction", reason))
                return
            text, transaction = translated
        request = CommandRequest(
            self.id, self.version, link.id, action, payload, transaction, self.context()
        )
        decision = self.arbiter.decide(request)
        if decision.allowed and action in _START_ACTIONS:
            decision = await self._contest_start(link.id, payload, decision)
        if not decision.allowed:
            await self._refuse(link, frame, decision)
            return
        claim = (
            self.sessions.claim_start(link.id, action, payload)
            if action in _START_ACTIONS
            else None
        )

        async def respond(answer: Frame) -> None:
            if claim is not None and not _accepted(answer):
                self.sessions.release(claim)
            await self._audit(link.id, frame, decision, answer)
            await link.send(with_unique_id(answer.raw, frame.unique_id))

        await self.commands.submit(Command(link.id, frame, text, respond))

    async def _contest_start(
        self: ChargerHub, backend_id: str, payload: dict[str, Any], decision: Decision
    ) -> Decision:
        """Remote starts for one connector at the same moment: the preferred backend wins."""
        connector = _connector_of(payload)
        winner = await self._starts.enter(connector, backend_id)
        if winner != backend_id:
            return Decision(
                False, "start_race", f"{winner} started on connector {connector} at the same time"
            )
        taken_by = self.sessions.claims().get(connector)
        if taken_by not in (None, backend_id):
            return Decision(False, "connector_busy", f"{taken_by} is starting a session there")
        return decision

    def context(self: ChargerHub) -> ChargerContext:
        """What the arbiter needs to know of the charger now."""
        statuses: dict[int, str] = {}
        for entry in self.connectors.values():
            where = entry["evse_id"] if entry["evse_id"] is not None else entry["connector_id"]
            if type(where) is int and isinstance(entry["status"], str):
                statuses[where] = entry["status"]
        return ChargerContext(
            online=self.charger is not None,
            connector_status=statuses,
            sessions=self.sessions.running(),
            claims=self.sessions.claims(),
        )

    async def homeowner_command(
        self: ChargerHub, action: str, payload: dict[str, Any], actor: str = HOMEOWNER
    ) -> HomeownerResult:
        """Send a command to the charger as the homeowner (or the proxy itself).

        It passes the arbiter as the homeowner (only safety rules apply), goes into the audit
        log, and waits for the charger's answer in the command queue. Never raises for the
        charger's sake: a charger that is offline, refuses or does not answer gives a result
        whose ``answer`` is a CALLERROR, or whose ``decision`` says why it was refused.
        """
        frame = parse_frame(build_call(str(uuid.uuid4()), action, payload))
        if self.charger is None:
            decision = Decision(
                False, "charger_offline", f"charge point {self.id} is not connected"
            )
            await self._audit(actor, frame, decision, None)
            return HomeownerResult(decision, None)
        request = CommandRequest(
            self.id,
            self.version,
            HOMEOWNER,
            action,
            payload,
            _named_transaction(payload),
            self.context(),
        )
        decision = self.arbiter.decide(request)
        if not decision.allowed:
            await self._audit(actor, frame, decision, None)
            return HomeownerResult(decision, None)
        answered: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

        async def respond(answer: Frame) -> None:
            await self._audit(actor, frame, decision, answer)
            answered.set_result(answer)

        await self.commands.submit(Command(actor, frame, frame.raw, respond))
        return HomeownerResult(decision, await answered)

    async def _audit(
        self: ChargerHub, actor: str, frame: Frame, decision: Decision, answer: Frame | None
    ) -> None:
        # Written before the requester hears the outcome: no decision goes unrecorded.
        if not decision.allowed:
            self.metrics.inc("ocpp_proxy_refusals_total", rule=decision.rule)
        await record_command(
            self.store,
            self.id,
            actor=actor,
            action=frame.action or "",
            payload=frame.payload,
            allowed=decision.allowed,
            rule=decision.rule,
            reason=decision.reason,
            answer=answer,
        )

    def _translate_16(
        self: ChargerHub, link: BackendLink, frame: Frame
    ) -> tuple[str, str | None] | None:
        """A 1.6 command with the backend's transaction id changed to the charger's.

        Returns the text to send and the charger's transaction id it names (None if it names
        none), or None when it names a transaction this backend has no id for.
        """
        if frame.action not in _COMMANDS_NAMING_TRANSACTION_16:
            return frame.raw, None
        payload = frame.payload or {}
        named = payload.get("transactionId")
        if named is None:
            named = (payload.get("csChargingProfiles") or {}).get("transactionId")
        if type(named) is not int:
            return frame.raw, None
        charger_tx = self.transaction_ids.to_charger(link.id, named)
        if charger_tx is None:
            return None
        return rewrite_transaction_id(frame.raw, named, charger_tx), str(charger_tx)

    async def _refuse(
        self: ChargerHub, link: BackendLink, frame: Frame, decision: Decision
    ) -> None:
        reason = f"refused by rule {decision.rule}: {decision.reason}"
        _LOGGER.info("%s: %s from %s %s", self.id, frame.action, link.id, reason)
        payload = refusal(self.version, frame.action or "")
        if payload is not None:
            text = build_call_result(frame.unique_id, payload)
        else:
            text = build_call_error(frame.unique_id, self.version.facts.generic_error, reason)
        await self._audit(link.id, frame, decision, parse_frame(text))
        await link.send(text)


@dataclass(frozen=True, slots=True)
class HomeownerResult:
    """The outcome of a homeowner's command: the decision, and the charger's answer if sent."""

    decision: Decision
    answer: Frame | None

    @property
    def accepted(self) -> bool:
        """Whether the charger answered with a CALLRESULT whose status is Accepted (or none)."""
        return self.answer is not None and _accepted(self.answer)


def _accepted(answer: Frame) -> bool:
    """A CALLRESULT whose ``status`` (if it has one) is Accepted."""
    return (
        answer.message_type == CALLRESULT
        and (answer.payload or {}).get("status", "Accepted") == "Accepted"
    )


def _named_transaction(payload: dict[str, Any]) -> str | None:
    """The 2.x transaction id a command names (1.6 ids are numbers and get translated)."""
    named = payload.get("transactionId")
    return named if isinstance(named, str) else None


def _connector_of(payload: dict[str, Any]) -> int | None:
    """The connector (1.6) or EVSE (2.x) a remote start asks for, if any."""
    for key in ("connectorId", "evseId"):
        if type(payload.get(key)) is int:
            return payload[key]
    return None
