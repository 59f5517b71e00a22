"""The translator of one backend link: every message both ways, charger's version to backend's.

One :class:`Translator` per backend link whose OCPP version differs from the charger's (OCPP 1.6
charger with a 2.0.1 / 2.1 backend, or a 2.0.1 / 2.1 charging station with a 1.6 backend). It
is pure apart from its :class:`~ocpp_proxy.translation.state.LinkTranslationState`: no I/O, no
awaits, so the relay calls it where it renders a frame for that link and where that link's
frames come in. A link of the charger's own version has no translator and pays nothing.

The four entry points, by who sends the CALL:

* charger CALL -> :meth:`Translator.charger_call` -> the backend's CALL, or the answer given
  on the backend's behalf (a message the backend's version cannot carry); the backend's
  CALLRESULT -> :meth:`Translator.backend_answer`, its CALLERROR ->
  :meth:`Translator.error_to_charger`;
* backend CALL -> :meth:`Translator.backend_call` -> the charger's CALL, an answer on the
  charger's behalf, or a refusal (CALLERROR NotSupported naming the action and why: the
  charger never sees a command that has no faithful translation); the charger's CALLRESULT ->
  :meth:`Translator.charger_answer`, its CALLERROR -> :meth:`Translator.error_to_backend`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.protocol.local_csms import local_answer
from ocpp_proxy.protocol.schemas import actions
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.translation import backend_commands, charger_messages
from ocpp_proxy.translation.common import (
    Forward,
    Outcome,
    Payload,
    Refuse,
    Reply,
    Untranslatable,
    error_code_to_2x,
    error_code_to_16,
    refuse,
)
from ocpp_proxy.translation.state import Context, LinkTranslationState, Pending

Table = dict[str, tuple[Callable[[Payload, Context], Outcome], Callable[[Payload, dict], Payload]]]


def translation_needed(charger: OcppVersion, backend: OcppVersion) -> bool:
    """Whether a backend speaking ``backend`` needs a translator for a charger speaking ``charger``.

    True for 1.6 against 2.0.1 or 2.1 (either way round); False for equal versions, which are
    relayed byte for byte. 2.0.1 against 2.1 has no translator (see docs/translation.md).
    """
    return charger is not backend and OcppVersion.V16 in (charger, backend)


class Translator:
    """Translates every message between a charger of one OCPP version and a backend of another.

    Args:
        charger: the charger's OCPP version.
        backend: the backend's OCPP version (1.6 against 2.0.1 / 2.1, either way round).
        charge_point_id: the charge point's id (seeds the 2.x transaction ids of a 1.6 charger).
        clock: the current Unix time (s); injectable for tests.
        known_transactions: the charger-side 1.6 transaction ids the relay remembers, so that
            a 2.x backend's command naming one from before a restart is recognised.

    Raises:
        ValueError: the pair of versions has no translation (see :func:`translation_needed`).
    """

    def __init__(
        self,
        charger: OcppVersion,
        backend: OcppVersion,
        charge_point_id: str = "",
        *,
        clock: Callable[[], float] = time.time,
        known_transactions: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        if not translation_needed(charger, backend):
            raise ValueError(f"no translation between OCPP {charger} and OCPP {backend}")
        self.charger = charger
        self.backend = backend
        self.state = LinkTranslationState(charge_point_id, known_transactions)
        self._clock = clock
        if charger is OcppVersion.V16:
            self._charger_table: Table = charger_messages.FROM_16_TO_2X
            self._backend_table: Table = backend_commands.FROM_2X_TO_16
            self._error_to_charger = error_code_to_16
            self._error_to_backend = error_code_to_2x
        else:
            self._charger_table = charger_messages.FROM_2X_TO_16
            self._backend_table = backend_commands.FROM_16_TO_2X
            self._error_to_charger = error_code_to_2x
            self._error_to_backend = error_code_to_16

    def _now(self) -> str:
        return iso_utc(self._clock()) or ""

    # -- charger CALL, backend answer -----------------------------------------------------

    def charger_call(
        self,
        unique_id: str,
        action: str,
        payload: Payload,
        transaction_id: int | None = None,
    ) -> Forward | Reply:
        """Translate a charger's CALL for the backend.

        Args:
            unique_id: the charger's unique id of the CALL (its answer is found by it).
            action: the charger's action, e.g. ``StartTransaction`` (OCPP 1.6 §4.8).
            payload: the charger's payload (not changed).
            transaction_id: for a 1.6 charger, the charger-side transaction id the relay
                assigned (StartTransaction) or read (MeterValues, StopTransaction).

        Returns:
            :class:`Forward`: the CALL to send to the backend (the same object again if the
            same CALL is rendered again, e.g. to resend it: same ``seqNo``). :class:`Reply`:
            the backend's version cannot carry it; this is the answer to give the charger on
            the backend's behalf (a payload of the charger's version).
        """
        cache_key = (unique_id, action)
        cached = self.state.rendered.get(cache_key)
        if cached is not None and (cached[0] is payload or cached[0] == payload):
            return cached[1]
        outcome = self._charger_call(unique_id, action, payload, transaction_id)
        if isinstance(outcome, Forward):
            self.state.rendered[cache_key] = (payload, outcome)
        return outcome

    def _charger_call(
        self, unique_id: str, action: str, payload: Payload, transaction_id: int | None
    ) -> Forward | Reply:
        entry = self._charger_table.get(action)
        if entry is not None:
            context = Context(self.state, action, self._now, transaction_id)
            try:
                outcome = entry[0](payload, context)
            except Exception:  # any payload from the wire: no translation
                outcome = None
            if isinstance(outcome, Forward):
                self.state.charger_calls[unique_id] = Pending(action, entry[1], context.memo)
                return outcome
            if isinstance(outcome, Reply):
                return outcome
        # Nothing the backend's version can carry (e.g. 2.x NotifyReport to a 1.6 backend):
        # the answer the proxy's local CSMS gives (OCPP 2.0.1 part 4 §4.2.2).
        try:
            answer = local_answer(self.charger, action, payload, transaction_id=transaction_id)
        except ValueError:  # a 1.6 StartTransaction without the relay's transaction id
            answer = None
        return Reply(answer if answer is not None else {})

    def backend_answer(self, unique_id: str, payload: Payload) -> Payload | None:
        """Translate the backend's CALLRESULT payload to a charger CALL into the charger's version.

        ``unique_id`` is the charger's unique id of that CALL. Returns None when no translated
        CALL of that id is in flight (already answered, or never sent through this link).
        """
        pending = self.state.charger_calls.pop(unique_id, None)
        if pending is None:
            return None
        self._forget_rendered(unique_id, pending.action)
        if "seq_transaction" in pending.context:  # confirmed: its seqNo is spent for good
            self.state.dirty.add(pending.context["seq_transaction"])
        try:
            return pending.answer(payload, pending.context)
        except Exception:  # a malformed answer: the local CSMS's instead
            answer = local_answer(
                self.charger,
                pending.action,
                {},
                transaction_id=pending.context.get("transaction_id")
                if self.charger is OcppVersion.V16
                else None,
            )
            return answer if answer is not None else {}

    def error_to_charger(self, unique_id: str | None, code: str) -> str:
        """A backend's CALLERROR code as the charger's version names it; forgets the CALL."""
        if unique_id is not None:
            pending = self.state.charger_calls.pop(unique_id, None)
            if pending is not None:
                self._forget_rendered(unique_id, pending.action)
        return self._error_to_charger(code)

    def _forget_rendered(self, unique_id: str, action: str) -> None:
        self.state.rendered.pop((unique_id, action), None)

    # -- backend CALL, charger answer -----------------------------------------------------

    def backend_call(self, unique_id: str, action: str, payload: Payload) -> Outcome:
        """Translate a backend's command for the charger.

        Args:
            unique_id: the backend's unique id of the CALL.
            action: the backend's action, e.g. ``RequestStartTransaction`` (2.0.1 F01).
            payload: the backend's payload (not changed).

        Returns:
            :class:`Forward`: the charger's CALL. :class:`Reply`: the answer to give the
            backend without asking the charger (a payload of the backend's version, e.g.
            ``Rejected`` for a transaction id it never had). :class:`Refuse`: no faithful
            translation; the backend gets a CALLERROR with this code and description.
        """
        entry = self._backend_table.get(action)
        if entry is None:
            return self._no_counterpart(action)
        context = Context(self.state, action, self._now)
        try:
            outcome = entry[0](payload, context)
        except Untranslatable as err:
            return refuse(action, str(err))
        except Exception as err:  # any payload from the wire: refused
            return refuse(
                action,
                f"malformed payload ({type(err).__name__})",
                "FormationViolation" if self.backend is OcppVersion.V16 else "FormatViolation",
            )
        if isinstance(outcome, Forward):
            self.state.backend_calls[unique_id] = Pending(action, entry[1], context.memo)
        return outcome

    def _no_counterpart(self, action: str) -> Refuse:
        if action not in actions(self.backend):
            return Refuse("NotImplemented", f"{action} is not an action of OCPP {self.backend}")
        if action in actions(self.charger):
            return refuse(action, f"the proxy has no translation of it to OCPP {self.charger}")
        return refuse(action, f"OCPP {self.charger} has no counterpart of it")

    def charger_answer(self, unique_id: str, payload: Payload) -> Payload | None:
        """Translate the charger's CALLRESULT payload to a backend command (backend's version).

        ``unique_id`` is the backend's unique id of the command. Returns None when no
        translated command of that id is in flight.
        """
        pending = self.state.backend_calls.pop(unique_id, None)
        if pending is None:
            return None
        try:
            return pending.answer(payload, pending.context)
        except Exception:  # a malformed answer: the caller sends a CALLERROR
            return None

    def error_to_backend(self, unique_id: str | None, code: str) -> str:
        """A charger's CALLERROR code as the backend's version names it; forgets the command."""
        if unique_id is not None:
            self.state.backend_calls.pop(unique_id, None)
        return self._error_to_backend(code)

    def pending_backend_action(self, unique_id: str) -> str | None:
        """The backend's action of a command in flight to the charger, if any."""
        pending = self.state.backend_calls.get(unique_id)
        return pending.action if pending else None

    def take_follow_ups(self, new_unique_id: Callable[[], str]) -> list[tuple[str, str, Payload]]:
        """The CALLs the proxy owes the backend after an answer it just translated.

        E.g. the NotifyReport after a GetBaseReport (OCPP 2.0.1 B07) that a 1.6 charger's
        GetConfiguration answered. Each is ``(unique id, action, payload)`` in the backend's
        version, under a unique id from ``new_unique_id``; they are the proxy's own, so their
        answers are not translated (see :meth:`is_own_call`).
        """
        calls = []
        for action, payload in self.state.follow_ups:
            unique_id = new_unique_id()
            self.state.own_calls[unique_id] = action
            calls.append((unique_id, action, payload))
        self.state.follow_ups.clear()
        return calls

    def is_own_call(self, unique_id: str) -> bool:
        """Whether ``unique_id`` is a CALL the proxy made in the backend's version itself."""
        return unique_id in self.state.own_calls

    def take_changes(self) -> list[tuple[str, dict[str, Any] | None]]:
        """The running transactions whose durable state changed since the last call.

        Each is ``(2.x transaction id, state or None)``: what to keep so that a restart of the
        proxy continues the translation (``seqNo``, a 1.6 backend's transaction id); None when
        it is to be forgotten (ended). See :meth:`restore`.
        """
        state = self.state
        if not state.dirty:
            return []
        changes = [(tx, state.durable(tx)) for tx in state.dirty]
        state.dirty.clear()
        return changes

    def restore(self, kept: dict[str, dict[str, Any]]) -> None:
        """Take back the states :meth:`take_changes` gave before a restart, by transaction id."""
        for transaction_id, state in kept.items():
            self.state.restore(transaction_id, state, self.charger is OcppVersion.V16)
        self.state.dirty.clear()

    def remember_transaction(self, charger_transaction_id: int) -> str:
        """Make a 1.6 charger's transaction known by its 2.x id (e.g. after a restart).

        Returns the 2.x transaction id the backend sees for it.
        """
        return self.state.transaction_id_2x(charger_transaction_id)


def describe(outcome: Outcome) -> dict[str, Any]:
    """A short description of an outcome, for logs and tests."""
    if isinstance(outcome, Forward):
        return {"forward": outcome.action}
    if isinstance(outcome, Reply):
        return {"reply": True}
    return {"refuse": outcome.code, "why": outcome.description}
