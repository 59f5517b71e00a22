"""The relay's side of translation: the frames of a backend link of another OCPP version.

The hub asks :class:`LinkTranslations` for a link's translator; a link of the charger's own
version has none, and its frames are relayed byte for byte as before. For a translated link the
hub calls, at its four points (docs/translation.md):

* :meth:`LinkTranslations.render` where a charger CALL is rendered for the link: the text in the
  backend's version, or the answer the charger gets on the backend's behalf;
* :meth:`LinkTranslations.answer_from_backend` where the backend answers such a CALL: the answer
  as a frame of the charger's version, which the hub then treats as any backend's answer;
* :meth:`LinkTranslations.command` where the backend sends a command: a CALL of the charger's
  version, which then passes the same checks, arbiter and queue as any command (rules are
  decided on the charger's version), or the text to answer the backend with at once;
* :meth:`LinkTranslations.answer_to_backend` where the charger's answer to that command (or
  the proxy's refusal of it) goes back: the text in the backend's version.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from ocpp_proxy.clock import Clock
from ocpp_proxy.protocol.frames import (
    CALL,
    CALLRESULT,
    Frame,
    FrameError,
    build_call,
    build_call_error,
    build_call_result,
    parse_frame,
)
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.backend_link import BackendLink, Delivery
from ocpp_proxy.security.schema import check_request
from ocpp_proxy.translation import Forward, Refuse, Reply, Translator, translation_needed

_LOGGER = logging.getLogger(__name__)

#: Keeps (backend id, 2.x transaction id, state or None to forget) behind the frame's path.
Persist = Callable[[str, str, dict[str, Any] | None], None]


class LinkTranslations:
    """The translators of one charge point's backend links, by backend id.

    Args:
        charge_point_id: the charge point's id (seeds the 2.x transaction ids of a 1.6 charger).
        clock: the time used for fields one version requires and the other lacks.
        known_transactions: the charger-side 1.6 transaction ids the relay remembers.
        persist: called with (backend id, 2.x transaction id, state or None) when what a
            running transaction's translation needs after a restart changed (to be written
            behind the frame's path).
    """

    def __init__(
        self,
        charge_point_id: str,
        *,
        clock: Clock,
        known_transactions: Callable[[], Iterable[int]],
        persist: Persist | None = None,
    ) -> None:
        self._charge_point_id = charge_point_id
        self._clock = clock
        self._known_transactions = known_transactions
        self._persist = persist
        self._by_link: dict[str, Translator] = {}
        self._kept: dict[str, dict[str, dict[str, Any]]] = {}

    def load(self, kept: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Take the states kept before a restart (backend id -> {transaction id: state})."""
        self._kept = kept
        for backend_id, translator in self._by_link.items():
            translator.restore(kept.get(backend_id, {}))

    def get(self, backend_id: str) -> Translator | None:
        """The translator of a link, or None when it speaks the charger's version."""
        return self._by_link.get(backend_id)

    def update(self, charger: OcppVersion, links: Iterable[BackendLink]) -> None:
        """Give each link of another version than ``charger`` a translator (kept if it fits).

        A translator is kept across reconnects of the same versions: it holds the transaction
        ids and ``seqNo`` counters of sessions that may still be running.
        """
        for link in links:
            current = self._by_link.get(link.id)
            if not translation_needed(charger, link.version):
                self._by_link.pop(link.id, None)
            elif current is None or (current.charger, current.backend) != (charger, link.version):
                translator = Translator(
                    charger,
                    link.version,
                    self._charge_point_id,
                    clock=self._clock.time,
                    known_transactions=self._known_transactions,
                )
                translator.restore(self._kept.get(link.id, {}))
                self._by_link[link.id] = translator

    def render(self, translator: Translator, delivery: Delivery) -> str | Frame:
        """A charger CALL for a translated link.

        Returns the CALL's text in the backend's version (same unique id), or, when the
        backend's version cannot carry it, the CALLRESULT frame (charger's version) that is
        that backend's answer.
        """
        frame = delivery.frame
        if translator.is_own_call(frame.unique_id):
            return frame.raw  # the proxy's own CALL, made in the backend's version
        outcome = translator.charger_call(
            frame.unique_id, frame.action or "", frame.payload or {}, delivery.transaction_id
        )
        self._flush(translator)
        if isinstance(outcome, Forward):
            return build_call(frame.unique_id, outcome.action, outcome.payload)
        return _result(frame.unique_id, outcome.payload)

    def answer_from_backend(
        self, translator: Translator, delivery: Delivery, frame: Frame
    ) -> Frame:
        """The backend's CALLRESULT or CALLERROR to a translated CALL (charger's version)."""
        unique_id = delivery.frame.unique_id
        if translator.is_own_call(unique_id):
            translator.state.own_calls.pop(unique_id, None)
            return frame  # the answer to the proxy's own CALL: nobody else waits for it
        if frame.message_type == CALLRESULT:
            payload = translator.backend_answer(unique_id, frame.payload or {})
            self._flush(translator)
            if payload is None:
                # Answered twice, or never sent through the translator: nothing to map.
                payload = {}
            return _result(frame.unique_id, payload)
        code, description, details = frame.error or ("GenericError", "", {})
        code = translator.error_to_charger(unique_id, code)
        return parse_frame(
            build_call_error(
                frame.unique_id, code, description, details if isinstance(details, dict) else None
            )
        )

    def follow_ups(self, translator: Translator) -> list[Frame]:
        """The proxy's own CALLs owed to the backend now (e.g. NotifyReport), as frames."""
        return [
            Frame(build_call(unique_id, action, payload), CALL, unique_id, action, payload)
            for unique_id, action, payload in translator.take_follow_ups(lambda: str(uuid.uuid4()))
        ]

    def _flush(self, translator: Translator) -> None:
        changes = translator.take_changes()
        if not changes or self._persist is None:
            return
        backend_id = next(k for k, v in self._by_link.items() if v is translator)
        for transaction_id, state in changes:
            self._persist(backend_id, transaction_id, state)

    def command(self, translator: Translator, link: BackendLink, frame: Frame) -> Frame | str:
        """A backend's CALL on a translated link.

        Returns the CALL in the charger's version (the backend's unique id kept), or the text
        to send the backend at once: a CALLERROR for a command that breaks the backend's own
        schema or has no faithful translation (NotSupported, naming the action and why), or
        a CALLRESULT the proxy gives without asking the charger.
        """
        action = frame.action or ""
        payload = frame.payload or {}
        violation = check_request(link.version, action, payload)
        if violation is not None:
            return build_call_error(frame.unique_id, violation.code, violation.description)
        outcome = translator.backend_call(frame.unique_id, action, payload)
        if isinstance(outcome, Forward):
            # Built, not parsed back: the text is ours and the payload is at hand.
            text = build_call(frame.unique_id, outcome.action, outcome.payload)
            return Frame(text, CALL, frame.unique_id, outcome.action, outcome.payload)
        if isinstance(outcome, Reply):
            return build_call_result(frame.unique_id, outcome.payload)
        assert isinstance(outcome, Refuse)
        _LOGGER.info("%s from %s not translated: %s", action, link.id, outcome.description)
        return build_call_error(frame.unique_id, outcome.code, outcome.description)

    def answer_to_backend(self, translator: Translator, text: str) -> str:
        """A CALLRESULT or CALLERROR for a translated link's command, in the backend's version.

        ``text`` carries the backend's unique id. Text that answers no translated command (it
        was made in the backend's version already) is returned unchanged.
        """
        try:
            frame = parse_frame(text)
        except FrameError:
            return text
        unique_id = frame.unique_id
        if frame.message_type == CALLRESULT:
            action = translator.pending_backend_action(unique_id)
            if action is None:
                return text
            payload = translator.charger_answer(unique_id, frame.payload or {})
            if payload is None:
                return build_call_error(
                    unique_id, "InternalError", f"the answer to {action} could not be translated"
                )
            return build_call_result(unique_id, payload)
        if frame.error is None:
            return text
        code, description, details = frame.error
        if translator.pending_backend_action(unique_id) is None:
            return text
        code = translator.error_to_backend(unique_id, code)
        return build_call_error(
            unique_id, code, description, details if isinstance(details, dict) else None
        )


def _result(unique_id: str, payload: dict[str, Any]) -> Frame:
    """A CALLRESULT frame built here (so not parsed back: its payload is at hand)."""
    return Frame(build_call_result(unique_id, payload), CALLRESULT, unique_id, payload=payload)
