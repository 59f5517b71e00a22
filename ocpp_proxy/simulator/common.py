"""What the simulator's OCPP versions share: constants, helpers and the peers' common base.

The per-version peers live in :mod:`ocpp_proxy.simulator.v16` (OCPP 1.6) and
:mod:`ocpp_proxy.simulator.v2` (OCPP 2.0.1 and 2.1); :mod:`ocpp_proxy.simulator.charger` is
the version-neutral charger that drives them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.exceptions import NotSupportedError, OCPPError

if TYPE_CHECKING:
    from ocpp_proxy.simulator.charger import SimulatedCharger


#: WebSocket subprotocol offered for each supported OCPP version (OCPP-J 1.6 §3.1.2,
#: OCPP 2.0.1 part 4 §3.1.2).
SUBPROTOCOLS: dict[str, str] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}

#: The OCPP versions :meth:`SimulatedCharger.connect` accepts.
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(SUBPROTOCOLS)

#: Charging power (W) the simulated EV draws in :meth:`SimulatedCharger.run_session`.
DEFAULT_POWER_W = 7400

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


class SimulationError(RuntimeError):
    """The CSMS answered in a way that stops the simulated session (e.g. a rejected boot)."""


def now_iso() -> str:
    """Current UTC time as an OCPP ``dateTime`` (RFC 3339 with ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compact(data: Any, limit: int = 200) -> str:
    """One-line JSON rendering of ``data`` for log lines, cut at ``limit`` characters."""
    text = json.dumps(data, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wire(result: Any) -> dict[str, Any]:
    """A handler's ``call_result`` dataclass as the camelCase payload that goes on the wire."""
    return snake_to_camel_case(remove_nones(serialize_as_dict(result)))


def charger_url(base: str, charge_point_id: str) -> str:
    """The WebSocket URL a charger ``charge_point_id`` connects to, given an endpoint URL.

    ``base`` is the proxy's (or a CSMS's) charger endpoint such as ``ws://localhost:9000/charger``;
    per OCPP-J 1.6 §3.1.1 / 2.0.1 part 4 §3.1.1 the charger appends ``/<id>`` to it.  The URL is
    returned unchanged when its last path segment already is the (URL-encoded) id.
    """
    trimmed = base.rstrip("/")
    last = urlsplit(trimmed).path.rsplit("/", 1)[-1]
    if last and unquote(last) == charge_point_id:
        return trimmed
    return f"{trimmed}/{quote(charge_point_id, safe='')}"


class PeerBase:
    """Behaviour shared by the per-version peers (mixed in before ``ocpp``'s ``ChargePoint``).

    Each received CALL is appended to the owning :class:`SimulatedCharger`'s ``received``
    right after its handler ran (so before the CSMS has the answer, and with the handler's
    effect applied); waiters are woken once the answer is sent.  The follow-up actions a
    handler queued with :meth:`then` (e.g. the StartTransaction after an accepted
    RemoteStartTransaction) start only after the CALLRESULT has been sent, so the CSMS always
    sees the answer first.
    """

    sim: SimulatedCharger
    route_map: dict[str, dict[str, Any]]
    _ocpp_version: str
    #: Every action the OCPP version defines.
    known_actions: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, sim: SimulatedCharger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sim = sim
        self.payload: dict[str, Any] = {}
        self._action = ""
        self._recorded = True
        self._followups: list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]] = []
        self._last_reply: Any = None
        for handlers in self.route_map.values():
            if "_on_action" in handlers:
                handlers["_on_action"] = self._remember_reply(handlers["_on_action"])

    def _remember_reply(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(**kwargs: Any) -> Any:
            try:
                self._last_reply = handler(**kwargs)
            finally:
                self._record_current()
            return self._last_reply

        return wrapper

    def then(self, label: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Queue ``factory()`` to run as a background task once the current CALL is answered."""
        self._followups.append((label, factory))

    def _record_current(self) -> None:
        if not self._recorded:
            self._recorded = True
            self.sim.received.append((self._action, self.payload))

    async def _handle_call(self, msg: Any) -> Any:
        # Keep the payload exactly as received: for some 1.6 actions the library's schema
        # validation swaps msg.payload for a copy with Decimal numbers.
        payload = msg.payload
        self.payload = payload
        self._action = msg.action
        self._recorded = False
        self._followups = []
        self._last_reply = None
        if msg.action not in self.route_map:
            # Answered here rather than by the library, which logs a traceback for it (and
            # sends no answer at all for 2.1): NotImplemented for an action of this OCPP
            # version, NotSupported for one it does not define (OCPP-J 1.6 §4.2.3).
            error: OCPPError
            if msg.action in self.known_actions:
                error = OcppNotImplementedError(details={"cause": f"{msg.action} not handled"})
            else:
                error = NotSupportedError(details={"cause": f"{msg.action} is not an action"})
            self.sim._log(f"<- {msg.action} {compact(payload)} -> CALLERROR {error.code}")
            self._record_current()
            try:
                await self._send(msg.create_call_error(error).to_json())  # type: ignore[attr-defined]
            finally:
                await self.sim._notify_received()
            return None
        try:
            result = await super()._handle_call(msg)  # type: ignore[misc]
        except OCPPError as exc:
            # E.g. a request that fails schema validation; route_message answers CALLERROR.
            self.sim._log(f"<- {msg.action} {compact(payload)} -> CALLERROR {exc.code}")
            self._record_current()
            await self.sim._notify_received()
            raise
        finally:
            followups, self._followups = self._followups, []
        self._record_current()
        await self.sim._notify_received()
        reply = wire(self._last_reply) if self._last_reply is not None else "CALLERROR"
        self.sim._log(f"<- {msg.action} {compact(payload)} -> {compact(reply)}")
        if self._last_reply is not None:
            for label, factory in followups:
                self.sim._spawn(label, factory())
        return result


def authorization_status(answer: Any) -> str | None:
    """The ``status`` of an Authorize answer (1.6 ``idTagInfo`` / 2.0.1 ``idTokenInfo``)."""
    info = getattr(answer, "id_tag_info", None) or getattr(answer, "id_token_info", None) or {}
    return info.get("status")


def power_by_phase(power_w: float, phases: int) -> list[tuple[str | None, float]]:
    """``[(phase, W)]``: the total alone for one phase, else an equal share on L1..Ln."""
    if phases <= 1:
        return [(None, power_w)]
    return [(f"L{n}", power_w / phases) for n in range(1, phases + 1)]


def number_text(value: float) -> str:
    """A meter reading as OCPP 1.6 text: ``"1234"`` for whole numbers, else ``"1234.5"``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")
