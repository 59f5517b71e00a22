"""The cards of the house: the homeowner's own, and those the backends accepted.

One :class:`CardBook` serves every charger of the proxy. The homeowner's cards come from the
config (``home_cards``, read only at run time) and from the REST API (kept in SQLite); they are
held in memory, since every Authorize consults them. The cards a backend accepted are written
to SQLite after the charger has its answer, and read only when no backend answers
(``offline_authorization: known_cards``). Card ids are personal data: logs show them masked
(:func:`~ocpp_proxy.policy.authorization.mask_card`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.authorization import DAY_S, HomeCard, mask_card
from ocpp_proxy.store import Store
from ocpp_proxy.store.errors import StoreError
from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)


class CardError(Exception):
    """A home card change the proxy refuses (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CardBook:
    """The homeowner's cards, and the cards backends accepted (for offline authorization).

    Args:
        config: ``home_cards`` and ``known_card_days`` are read from it.
        store: where API-added home cards and accepted cards are kept.
        clock: the time now (Unix s).
    """

    def __init__(
        self, config: ProxyConfig, store: Store, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._config_cards = {card.id_tag: card for card in config.home_cards}
        self._api_cards: dict[str, HomeCard] = {}
        self._known_s = config.known_card_days * DAY_S
        self._store = store
        self._clock = clock
        self.on_change: Callable[[], None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._tasks = TaskSet("cards")

    async def load(self) -> None:
        """Read the cards added through the API (at start-up)."""
        self._api_cards = {card.id_tag: card for card in await self._store.home_cards()}

    def home_card(self, id_tag: str | None) -> HomeCard | None:
        """The home card ``id_tag`` (expired or not), or None."""
        if id_tag is None:
            return None
        return self._config_cards.get(id_tag) or self._api_cards.get(id_tag)

    def home_cards(self) -> list[HomeCard]:
        """Every home card: the config's first, then the API's, each by id tag."""
        api = [card for tag, card in self._api_cards.items() if tag not in self._config_cards]
        return sorted(self._config_cards.values(), key=lambda c: c.id_tag) + sorted(
            api, key=lambda c: c.id_tag
        )

    async def add(self, card: HomeCard) -> None:
        """Add or replace a home card (kept in SQLite).

        Raises:
            CardError: the card is in the config's ``home_cards`` (change it there).
            StoreError: the database failed.
        """
        if card.id_tag in self._config_cards:
            raise CardError("the card is in the config's home_cards; change it there")
        await self._store.save_home_card(card)
        self._api_cards[card.id_tag] = card
        _LOGGER.info("home card %s added", mask_card(card.id_tag))
        self._changed()

    async def remove(self, id_tag: str) -> bool:
        """Remove a home card added through the API; False if there is none.

        Raises:
            CardError: the card is in the config's ``home_cards`` (remove it there).
            StoreError: the database failed.
        """
        if id_tag in self._config_cards:
            raise CardError("the card is in the config's home_cards; remove it there")
        removed = await self._store.delete_home_card(id_tag)
        self._api_cards.pop(id_tag, None)
        if removed:
            _LOGGER.info("home card %s removed", mask_card(id_tag))
            self._changed()
        return removed

    def accepted(self, id_tag: str, backend_id: str) -> None:
        """``backend_id`` accepted ``id_tag``: remember it, off the frame path."""
        task = self._tasks.spawn(self._remember(id_tag, backend_id, self._clock()))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Wait until the accepted cards noted so far are written."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def close(self) -> None:
        """Finish the writes under way (briefly), before the store closes."""
        await self._tasks.close(grace_s=1.0)

    async def _remember(self, id_tag: str, backend_id: str, at: float) -> None:
        try:
            await self._store.card_accepted(id_tag, backend_id, at)
        except StoreError as err:
            _LOGGER.warning(
                "card %s accepted by %s not kept: %s", mask_card(id_tag), backend_id, err
            )

    async def known_by(self, id_tag: str) -> str | None:
        """The backend that accepted ``id_tag`` within ``known_card_days``, or None.

        A store fault is logged and counts as unknown (the card is then refused offline).
        """
        try:
            return await self._store.card_known_by(id_tag, self._clock() - self._known_s)
        except StoreError as err:
            _LOGGER.warning("known cards unreadable (%s): card %s unknown", err, mask_card(id_tag))
            return None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
