"""Commands on their way to the charger: from backends, and from the homeowner.

A backend's CALL has its 1.6 transaction id translated to the charger's, is checked against the
OCPP schema, passes the arbiter (racing remote starts are settled here) and the audit log, and
waits its turn in the command queue; the answer goes back under the backend's own unique id
(OCPP-J 1.6 §4.1.1). The homeowner's commands (web page, REST API, Home Assistant) take the same
way as the homeowner. :class:`ChargerCommands` is an object the hub composes; it reads the
charge point's state and never calls back into the hub.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocpp_proxy.audit import record_command
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.policy.decisions import HOMEOWNER, Arbiter, CommandRequest, Decision
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
from ocpp_proxy.protocol.messages import (
    COMMANDS_NAMING_TRANSACTION_16,
    START_ACTIONS,
    command_connector,
    command_transaction_2x,
    command_transaction_16,
)
from ocpp_proxy.relay.backend_link import BackendLink
from ocpp_proxy.relay.charge_point import ChargePoint
from ocpp_proxy.relay.command_queue import Command, CommandQueue
from ocpp_proxy.relay.start_contest import StartContest
from ocpp_proxy.relay.transaction_ids import rewrite_transaction_id
from ocpp_proxy.security.schema import check_request
from ocpp_proxy.store import Store

_LOGGER = logging.getLogger(__name__)

#: Sends a frame to a backend's send queue (never waits).
ToBackend = Callable[[BackendLink, str], None]


class ChargerCommands:
    """Commands from backends and the homeowner, on their way to one charger.

    Args:
        point: the charge point's state (connection, version, sessions, transaction ids).
        queue: the queue of commands to the charger (one in flight at a time).
        arbiter: decides which commands reach the charger.
        starts: settles remote starts that race for one connector.
        store: where the audit log is written.
        metrics: refusal and schema-violation counters.
        to_backend: sends an answer to a backend.
    """

    def __init__(
        self,
        point: ChargePoint,
        queue: CommandQueue,
        *,
        arbiter: Arbiter,
        starts: StartContest,
        store: Store,
        metrics: Metrics,
        to_backend: ToBackend,
    ) -> None:
        self.point = point
        self.queue = queue
        self.arbiter = arbiter
        self.starts = starts
        self.store = store
        self.metrics = metrics
        self.to_backend = to_backend

    async def on_backend_send(self, link: BackendLink, frame: Frame) -> None:
        """An OCPP 2.1 SEND from a backend: to the charger at once, if the arbiter allows it."""
        decision = self.arbiter.decide(
            CommandRequest(
                self.point.id, self.point.version, link.id, frame.action or "", frame.payload or {}
            )
        )
        if not self.point.online or not decision.allowed:
            _LOGGER.info("%s: SEND %s from %s dropped", self.point.id, frame.action, link.id)
            return
        self.point.send(frame.raw, (frame.message_type, frame.unique_id, frame.action))

    async def on_backend_call(self, link: BackendLink, frame: Frame) -> None:
        """A backend's command for the charger: map ids, arbitrate, queue (OCPP-J 1.6 §4.1.1).

        Every command, passed or refused, goes to the audit log with the rule that decided.
        """
        action = frame.action or ""
        payload = frame.payload or {}
        version = self.point.version
        if not self.point.online:
            reason = f"charge point {self.point.id} is not connected"
            await self._audit(link.id, frame, Decision(False, "charger_offline", reason), None)
            self.to_backend(
                link, build_call_error(frame.unique_id, version.facts.generic_error, reason)
            )
            return
        violation = check_request(version, action, payload)
        if violation is not None:
            # The charger never sees a command that breaks its version's schema: the backend
            # hears what is wrong (OCPP-J 1.6 §4.2.3 codes), the audit log says rule "schema".
            self.metrics.inc("ocpp_proxy_schema_violations_total", peer="backend", action=action)
            decision = Decision(False, "schema", violation.description)
            _LOGGER.info(
                "%s: %s from %s refused: %s %s",
                self.point.id,
                action,
                link.id,
                violation.code,
                violation.description,
            )
            text = build_call_error(frame.unique_id, violation.code, violation.description)
            await self._audit(link.id, frame, decision, parse_frame(text))
            self.to_backend(link, text)
            return
        text, transaction = frame.raw, command_transaction_2x(payload)
        if not version.facts.charger_assigns_transaction_id:
            translated = self._translate_16(link, frame)
            if translated is None:
                reason = "the transactionId names no transaction of this backend"
                await self._refuse(link, frame, Decision(False, "unknown_transaction", reason))
                return
            text, transaction = translated
        request = CommandRequest(
            self.point.id, version, link.id, action, payload, transaction, self.point.context()
        )
        decision = self.arbiter.decide(request)
        if decision.allowed and action in START_ACTIONS:
            decision = await self._contest_start(link.id, payload, decision)
        if not decision.allowed:
            await self._refuse(link, frame, decision)
            return
        claim = (
            self.point.sessions.claim_start(link.id, action, payload)
            if action in START_ACTIONS
            else None
        )

        async def respond(answer: Frame) -> None:
            if claim is not None and not _accepted(answer):
                self.point.sessions.release(claim)
            await self._audit(link.id, frame, decision, answer)
            self.to_backend(link, with_unique_id(answer.raw, frame.unique_id))

        await self.queue.submit(Command(link.id, frame, text, respond))

    async def answered_untranslated(self, link: BackendLink, frame: Frame, text: str) -> None:
        """A translated backend's command the charger is not asked: audit it, send ``text``.

        ``text`` is the CALLERROR (no faithful translation, or a schema violation) or the
        CALLRESULT the proxy answers with in the backend's version (docs/translation.md).
        """
        answer = parse_frame(text)
        if answer.error is not None:
            reason = f"{answer.error[0]}: {answer.error[1]}"
        else:
            reason = f"answered by the proxy in OCPP {link.version}: no command for the charger"
        await self._audit(link.id, frame, Decision(False, "translation", reason), answer)
        self.to_backend(link, text)

    async def _contest_start(
        self, backend_id: str, payload: dict[str, Any], decision: Decision
    ) -> Decision:
        """Remote starts for one connector at the same moment: the preferred backend wins."""
        connector = command_connector(payload)
        winner = await self.starts.enter(connector, backend_id)
        if winner != backend_id:
            return Decision(
                False, "start_race", f"{winner} started on connector {connector} at the same time"
            )
        taken_by = self.point.sessions.claims().get(connector)
        if taken_by not in (None, backend_id):
            return Decision(False, "connector_busy", f"{taken_by} is starting a session there")
        return decision

    async def homeowner_command(
        self, action: str, payload: dict[str, Any], actor: str = HOMEOWNER
    ) -> HomeownerResult:
        """Send a command to the charger as the homeowner (or the proxy itself).

        It passes the arbiter as the homeowner (only safety rules apply), goes into the audit
        log, and waits for the charger's answer in the command queue. Never raises for the
        charger's sake: a charger that is offline, refuses or does not answer gives a result
        whose ``answer`` is a CALLERROR, or whose ``decision`` says why it was refused.
        """
        frame = parse_frame(build_call(str(uuid.uuid4()), action, payload))
        if not self.point.online:
            decision = Decision(
                False, "charger_offline", f"charge point {self.point.id} is not connected"
            )
            await self._audit(actor, frame, decision, None)
            return HomeownerResult(decision, None)
        request = CommandRequest(
            self.point.id,
            self.point.version,
            HOMEOWNER,
            action,
            payload,
            command_transaction_2x(payload),
            self.point.context(),
        )
        decision = self.arbiter.decide(request)
        if not decision.allowed:
            await self._audit(actor, frame, decision, None)
            return HomeownerResult(decision, None)
        answered: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

        async def respond(answer: Frame) -> None:
            await self._audit(actor, frame, decision, answer)
            answered.set_result(answer)

        await self.queue.submit(Command(actor, frame, frame.raw, respond))
        return HomeownerResult(decision, await answered)

    async def _audit(
        self, actor: str, frame: Frame, decision: Decision, answer: Frame | None
    ) -> None:
        # Written before the requester hears the outcome: no decision goes unrecorded.
        if not decision.allowed:
            self.metrics.inc("ocpp_proxy_refusals_total", rule=decision.rule)
        await self.point.journal.guard(
            "writing the audit log",
            record_command(
                self.store,
                self.point.id,
                actor=actor,
                action=frame.action or "",
                payload=frame.payload,
                allowed=decision.allowed,
                rule=decision.rule,
                reason=decision.reason,
                answer=answer,
            ),
        )

    def _translate_16(self, link: BackendLink, frame: Frame) -> tuple[str, str | None] | None:
        """A 1.6 command with the backend's transaction id changed to the charger's.

        Returns the text to send and the charger's transaction id it names (None if it names
        none), or None when it names a transaction this backend has no id for.
        """
        if frame.action not in COMMANDS_NAMING_TRANSACTION_16:
            return frame.raw, None
        named = command_transaction_16(frame.payload or {})
        if type(named) is not int:
            return frame.raw, None
        charger_tx = self.point.transaction_ids.to_charger(link.id, named)
        if charger_tx is None:
            return None
        return rewrite_transaction_id(frame.raw, named, charger_tx), str(charger_tx)

    async def _refuse(self, link: BackendLink, frame: Frame, decision: Decision) -> None:
        reason = f"refused by rule {decision.rule}: {decision.reason}"
        _LOGGER.info("%s: %s from %s %s", self.point.id, frame.action, link.id, reason)
        version = self.point.version
        payload = refusal(version, frame.action or "")
        if payload is not None:
            text = build_call_result(frame.unique_id, payload)
        else:
            text = build_call_error(frame.unique_id, version.facts.generic_error, reason)
        await self._audit(link.id, frame, decision, parse_frame(text))
        self.to_backend(link, text)


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
