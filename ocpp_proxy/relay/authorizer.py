"""Card authorization of one charge point: who is asked, whose answer counts, who owns.

The rules are :mod:`ocpp_proxy.policy.authorization`; this module keeps the little state they
need per charger: the owner each card was given lately (a 1.6 Authorize is followed by the
StartTransaction of the same card; a 2.x Authorize by TransactionEvent), and the answers
gathered for one charger CALL (:class:`CardCheck`). The hub feeds it answers and link states
and sends the charger what it decides.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.authorization import (
    HOME,
    AuthorizationMode,
    Choice,
    OfflineAuthorization,
    ShareSessions,
    choose_answer,
    home_card_valid,
    may_see_session,
    offline_decision,
    route_for,
)
from ocpp_proxy.protocol.frames import Frame
from ocpp_proxy.relay.cards import CardBook

#: Charger CALLs whose answer carries an authorization status for the card they present:
#: OCPP 1.6 Authorize (§4.1), StartTransaction (§4.8); 2.x Authorize (C01), TransactionEvent (E).
CARD_ANSWERED: Final = frozenset({"Authorize", "StartTransaction", "TransactionEvent"})

#: How many cards keep the owner they were given (a house sees few cards).
_REMEMBERED = 64


@dataclass(slots=True, eq=False)
class CardCheck:
    """The backends' answers to one charger CALL that presents a card.

    ``order`` are the backends asked whose answer counts, in config order; ``answers`` their
    statuses so far and ``frames`` the answers themselves; ``failed`` those that answered a
    CALLERROR or no status (they count as silent).
    """

    id_tag: str
    order: tuple[str, ...]
    answers: dict[str, str] = field(default_factory=dict)
    frames: dict[str, Frame] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def answered(self, backend_id: str) -> bool:
        """Whether ``backend_id`` has given its answer (a status or a failure)."""
        return backend_id in self.answers or backend_id in self.failed


class Authorizer:
    """The card rules of one charge point, with the owners given to cards lately.

    Args:
        config: ``authorization``, ``id_tag_routes``, ``offline_authorization``, the backends
            (config order, ``share_sessions``) and ``remote_start_window`` (how long a card
            keeps the owner an Authorize gave it, s).
        cards: the house's card book (home cards, cards backends accepted).
        clock: monotonic time (s).
        wall_clock: Unix time (s), for home card expiry.
    """

    def __init__(
        self,
        config: ProxyConfig,
        cards: CardBook,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.cards = cards
        self.order = config.backend_ids
        self._shares = {
            backend.id: backend.share_sessions
            for backend in (*config.ocpp_services, *config.inbound_backends)
        }
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # Session key -> owner, known on the frame path (the session's record comes later).
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self._clock = clock
        self._wall_clock = wall_clock

    def is_home_card(self, id_tag: str | None) -> bool:
        """Whether ``id_tag`` is a home card that has not expired."""
        return home_card_valid(self.cards.home_card(id_tag), self._wall_clock())

    def route(self, id_tag: str | None) -> str | None:
        """The backend ``id_tag_routes`` sends ``id_tag`` to, if any."""
        return None if id_tag is None else route_for(id_tag, self.config.id_tag_routes)

    def owner_of_card(self, id_tag: str | None, *, remembered: bool = True) -> str | None:
        """Who a card's next session belongs to, if known before any backend is asked.

        A home card's is :data:`HOME`; else (with ``remembered``) the owner a recent answer
        gave the card (within ``remote_start_window``); else the backend its route names. A
        new Authorize asks again (``remembered=False``): the card may have been blocked since.
        """
        if id_tag is None:
            return None
        if self.is_home_card(id_tag):
            return HOME
        remembered_owner = self._owners.get(id_tag) if remembered else None
        if remembered_owner is not None and self._clock() - remembered_owner[1] <= (
            self.config.remote_start_window
        ):
            return remembered_owner[0]
        return self.route(id_tag)

    def remember(self, id_tag: str, owner: str) -> None:
        """``owner`` accepted ``id_tag``: the card's next session is ``owner``'s."""
        self._owners[id_tag] = (owner, self._clock())
        self._owners.move_to_end(id_tag)
        while len(self._owners) > _REMEMBERED:
            self._owners.popitem(last=False)

    def forget(self, id_tag: str) -> None:
        """``id_tag`` was refused: its next session has no owner by an earlier acceptance."""
        self._owners.pop(id_tag, None)

    def session_owner(self, key: str | None) -> str | None:
        """The owner given to session ``key`` on the frame path, if any."""
        return None if key is None else self._sessions.get(key)

    def own_session(self, key: str | None, owner: str | None) -> None:
        """Session ``key`` is ``owner``'s (before its record says so)."""
        if key is None or owner is None:
            return
        self._sessions[key] = owner
        self._sessions.move_to_end(key)
        while len(self._sessions) > _REMEMBERED:
            self._sessions.popitem(last=False)

    def end_session(self, key: str | None) -> None:
        """Session ``key`` ended."""
        if key is not None:
            self._sessions.pop(key, None)

    def may_see(self, backend_id: str, owner: str | None) -> bool:
        """Whether ``backend_id`` gets the transaction messages of ``owner``'s session."""
        share = self._shares.get(backend_id, ShareSessions.ALL)
        return may_see_session(share, backend_id, owner)

    def asks(self, backend_id: str, id_tag: str | None) -> bool:
        """Whether the Authorize of ``id_tag`` goes to ``backend_id``.

        Nobody is asked about a home card; a routed card only of its backend.
        """
        if id_tag is None:
            return True
        if self.is_home_card(id_tag):
            return False
        routed = self.route(id_tag)
        return routed is None or routed == backend_id

    def check(self, id_tag: str, asked: Iterable[str]) -> CardCheck:
        """A new check of ``id_tag`` among the backends ``asked`` (kept in config order)."""
        asked = set(asked)
        return CardCheck(id_tag, tuple(b for b in self.order if b in asked))

    def choose(
        self, check: CardCheck, primary: str | None, waiting: Iterable[str]
    ) -> Choice | None:
        """The answer for the charger from the answers so far, or None (wait, or offline).

        With ``authorization: primary_only`` only the primary's answer counts.
        """
        if self.config.authorization is AuthorizationMode.PRIMARY_ONLY:
            if primary is None:
                return None
            answers = {k: v for k, v in check.answers.items() if k == primary}
            waiting = [b for b in waiting if b == primary]
            return choose_answer((primary,), primary, answers, waiting)
        return choose_answer(check.order, primary, check.answers, waiting)

    async def offline(self, id_tag: str) -> Choice:
        """The proxy's own answer when no backend answered (``offline_authorization``).

        A proxy with no backend configured and no home card is the charger's only central
        system, as on first start: it accepts every card (there is nobody else to ask).
        """
        policy = self.config.offline_authorization
        if not self.order and not self.cards.home_cards():
            policy = OfflineAuthorization.ALL
        card = self.cards.home_card(id_tag)
        known_by = None
        if not home_card_valid(card, self._wall_clock()):
            known_by = await self.cards.known_by(id_tag)
        return offline_decision(
            id_tag, policy, home_card=card, known_by=known_by, now=self._wall_clock()
        )
