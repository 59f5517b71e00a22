"""Whose customer is charging: the card authorization rules, as pure functions over data.

A charger asks its central system whether a card may charge: OCPP 1.6 Authorize (§4.1) with an
``idTag``, answered with ``idTagInfo.status``; OCPP 2.0.1/2.1 Authorize (C01) with an
``idToken``, answered with ``idTokenInfo.status``. The same status comes back in the answers
to 1.6 StartTransaction (§4.8) and 2.x TransactionEvent (E05). With several backends the proxy
asks each that may know the card and picks one answer; the backend whose answer was picked
owns the session the card begins. The rules (no I/O here; the relay applies them):

* ``id_tag_routes``: a card that matches a route (an exact id, or a prefix ending in ``*``)
  is asked of that backend only (:func:`route_for`).
* The homeowner's own cards (``home_cards``) are accepted by the proxy itself, at once; their
  sessions belong to :data:`HOME` (:func:`home_card_valid`).
* Among the backends' answers: the primary's when it accepts, else the first backend in config
  order (``ocpp_services``, then inbound backends) that accepts; when none does, the best
  refusal (``Blocked`` / ``Expired`` over ``Invalid``), the primary's on a tie
  (:func:`choose_answer`).
* With no backend answering at all: ``offline_authorization`` (:func:`offline_decision`).
* ``share_sessions: own``: a backend sees only the sessions it owns (:func:`may_see_session`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

#: The owner of a session begun with one of the homeowner's own cards.
HOME: Final = "home"

ACCEPTED: Final = "Accepted"
INVALID: Final = "Invalid"

#: Refusals from the most to the least telling: a card a backend blocked or saw expire must
#: not be hidden behind another backend's "never heard of it" (1.6 ``AuthorizationStatus``;
#: 2.0.1 ``AuthorizationStatusEnumType``). A status not listed ranks below ``Invalid``.
REFUSAL_RANK: Final = (
    "Blocked",
    "Expired",
    "NoCredit",
    "NotAllowedTypeEVSE",
    "NotAtThisLocation",
    "NotAtThisTime",
    "ConcurrentTx",
    "Invalid",
    "Unknown",
)

#: Seconds per day, for ``known_card_days``.
DAY_S: Final = 86400.0


class AuthorizationMode(StrEnum):
    """``authorization``: who may accept a card."""

    ANY_BACKEND = "any_backend"  # any enabled, connected backend
    PRIMARY_ONLY = "primary_only"  # the primary alone (the behaviour before issue 12)


class OfflineAuthorization(StrEnum):
    """``offline_authorization``: what the proxy accepts when no backend answers."""

    KNOWN_CARDS = "known_cards"  # home cards, and cards a backend accepted lately
    HOME_CARDS = "home_cards"  # home cards only
    ALL = "all"  # every card (a stranger can charge while the internet is down)


class ShareSessions(StrEnum):
    """``share_sessions`` of a backend: which sessions' messages it gets."""

    ALL = "all"
    OWN = "own"


@dataclass(frozen=True, slots=True)
class IdTagRoute:
    """One ``id_tag_routes`` entry: cards that ``match`` are asked of ``backend`` only.

    ``match`` is an exact id tag / id token, or a prefix ending in ``*`` (``NL-ABC-*``).
    """

    match: str
    backend: str

    def matches(self, id_tag: str) -> bool:
        """Whether ``id_tag`` is this route's card (exact, or by prefix)."""
        if self.match.endswith("*"):
            return id_tag.startswith(self.match[:-1])
        return id_tag == self.match


@dataclass(frozen=True, slots=True)
class HomeCard:
    """One of the homeowner's cards: its id tag / id token, a name, an optional expiry.

    ``expires_at`` is Unix time (s), or None for a card that does not expire; ``source`` is
    ``config`` (from ``home_cards``) or ``api`` (added through the REST API).
    """

    id_tag: str
    name: str = ""
    expires_at: float | None = None
    source: str = "config"


@dataclass(frozen=True, slots=True)
class Choice:
    """The answer the charger gets to a card: whose answer, and who owns the session.

    ``answer_from`` is the backend whose answer frame is passed on (None: the proxy answers
    itself with ``status``); ``owner`` the session's owner if the card was accepted (a backend
    id, :data:`HOME`), else None.
    """

    status: str
    answer_from: str | None
    owner: str | None


def route_for(id_tag: str, routes: Sequence[IdTagRoute]) -> str | None:
    """Return the backend the first matching route names, or None when no route matches."""
    for route in routes:
        if route.matches(id_tag):
            return route.backend
    return None


def home_card_valid(card: HomeCard | None, now: float) -> bool:
    """Whether ``card`` (None: not a home card) is accepted at ``now`` (Unix s)."""
    return card is not None and (card.expires_at is None or now < card.expires_at)


def refusal_rank(status: str) -> int:
    """Lower is more telling (see :data:`REFUSAL_RANK`); unknown statuses rank last."""
    try:
        return REFUSAL_RANK.index(status)
    except ValueError:
        return len(REFUSAL_RANK)


def best_refusal(statuses: Iterable[str]) -> str:
    """The most telling of refusal ``statuses`` (``Invalid`` when there are none)."""
    return min(statuses, key=refusal_rank, default=INVALID)


def choose_answer(
    order: Sequence[str],
    primary: str | None,
    answers: Mapping[str, str],
    waiting: Iterable[str] = (),
) -> Choice | None:
    """Pick the charger's answer among the backends' authorization statuses.

    Args:
        order: the backends asked, in config order (``ocpp_services`` then inbound backends).
        primary: the primary backend (its acceptance wins, its refusal wins ties), or None.
        answers: backend id -> the status it answered so far (``idTagInfo.status`` /
            ``idTokenInfo.status``).
        waiting: the backends asked that have not answered yet and still may (connected,
            within ``response_timeout``); empty at the deadline.

    Returns:
        The choice, or None while it depends on a backend still in ``waiting`` (the primary,
        or one before the first accepting backend in config order). With no answers and
        nobody waiting, None as well: the caller answers with :func:`offline_decision`.
    """
    waiting = set(waiting)
    if primary is not None and answers.get(primary) == ACCEPTED:
        return Choice(ACCEPTED, primary, primary)
    if primary in waiting:
        return None
    for backend in order:
        if backend in waiting:
            return None  # an earlier backend in config order may still accept
        if answers.get(backend) == ACCEPTED:
            return Choice(ACCEPTED, backend, backend)
    if not answers:
        return None
    ranked = ([primary] if primary in answers else []) + [b for b in order if b in answers]
    chosen = min(ranked, key=lambda backend: refusal_rank(answers[backend]))
    return Choice(answers[chosen], chosen, None)


def offline_decision(
    id_tag: str | None,
    policy: OfflineAuthorization,
    *,
    home_card: HomeCard | None,
    known_by: str | None,
    now: float,
) -> Choice:
    """The proxy's own answer to a card when no backend answered.

    Args:
        id_tag: the card (None: a request without one, which is accepted as before).
        policy: ``offline_authorization``.
        home_card: the card's entry among the home cards, if it is one.
        known_by: the backend that accepted the card within ``known_card_days``, if any.
        now: the time (Unix s), for the home card's expiry.

    Returns:
        Accepted for a valid home card (owner :data:`HOME`); under ``known_cards`` for a card
        a backend accepted lately (owned by that backend, which gets the session in its outbox
        replay); under ``all`` for every card (owned by the backend that knows it, else None:
        the proxy's own); else Invalid.
    """
    if id_tag is None:
        return Choice(ACCEPTED, None, None)
    if home_card_valid(home_card, now):
        return Choice(ACCEPTED, None, HOME)
    if policy is OfflineAuthorization.KNOWN_CARDS and known_by is not None:
        return Choice(ACCEPTED, None, known_by)
    if policy is OfflineAuthorization.ALL:
        return Choice(ACCEPTED, None, known_by)
    return Choice(INVALID, None, None)


def may_see_session(share: ShareSessions, backend: str, owner: str | None) -> bool:
    """Whether a backend with ``share_sessions`` = ``share`` gets the messages of a session.

    ``owner`` is the session's owner (None: not known yet). A backend with ``own`` sees only
    its own sessions, so not one whose owner is still unknown either.
    """
    return share is ShareSessions.ALL or owner == backend


def card_of(action: str, payload: Mapping[str, Any]) -> str | None:
    """The card a charger CALL presents: 1.6 ``idTag``, 2.x ``idToken.idToken``; else None.

    Covers Authorize, 1.6 StartTransaction and StopTransaction, and 2.x TransactionEvent.
    """
    if action in ("Authorize", "StartTransaction", "StopTransaction", "TransactionEvent"):
        id_tag = payload.get("idTag")
        if isinstance(id_tag, str):
            return id_tag
        id_token = payload.get("idToken")
        if isinstance(id_token, Mapping):
            token = id_token.get("idToken")
            return token if isinstance(token, str) else None
    return None


def status_of(answer: Mapping[str, Any] | None) -> str | None:
    """The authorization status in an answer payload (``idTagInfo`` / ``idTokenInfo``)."""
    if not isinstance(answer, Mapping):
        return None
    info = answer.get("idTagInfo", answer.get("idTokenInfo"))
    if isinstance(info, Mapping):
        status = info.get("status")
        return status if isinstance(status, str) else None
    return None


def mask_card(id_tag: str | None) -> str:
    """A card id as logs and displays show it: the first and last two characters at most.

    ``"04A2B3C4D5E6"`` -> ``"04********E6"``; six characters or fewer are fully masked.
    Card ids are personal data (EU GDPR): logs never carry them in full.
    """
    if not id_tag:
        return ""
    if len(id_tag) <= 6:
        return "*" * len(id_tag)
    return id_tag[:2] + "*" * (len(id_tag) - 4) + id_tag[-2:]
