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
from typing import Final

from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.authorization import DAY_S, HomeCard, mask_card
from ocpp_proxy.store import Store
from ocpp_proxy.store.errors import StoreError
from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

#: Seconds the cards backends accepted wait before they are written, as one batch.
WRITE_DELAY_S: Final = 2.0
#: Seconds within which a card accepted again by the same backend is not written again.
REFRESH_S: Final = 3600.0
#: How many written (card, backend) pairs are remembered for :data:`REFRESH_S`.
_WRITTEN_KEPT = 1024


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
        self._due: dict[tuple[str, str], float] = {}  # (card, backend) -> accepted at
        self._written: dict[tuple[str, str], float] = {}
        self._writer: asyncio.Task[None] | None = None
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
        """``backend_id`` accepted ``id_tag``: remember it, written behind in a batch.

        Needed only when no backend answers, so it waits :data:`WRITE_DELAY_S` and never
        competes with the session records; a card accepted again within
        :data:`REFRESH_S` is not written again.
        """
        key = (id_tag, backend_id)
        now = self._clock()
        if now - self._written.get(key, -REFRESH_S) < REFRESH_S:
            return
        self._due[key] = now
        if self._writer is None:
            self._writer = self._tasks.spawn(self._write_after(WRITE_DELAY_S))

    async def flush(self) -> None:
        """Write the accepted cards noted so far now."""
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        await self._write_due()

    async def close(self) -> None:
        """Write what is due, before the store closes."""
        await self.flush()
        await self._tasks.close()

    async def _write_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._writer = None
        await self._write_due()

    async def _write_due(self) -> None:
        due, self._due = self._due, {}
        if not due:
            return
        try:
            await self._store.cards_accepted([(tag, b, at) for (tag, b), at in due.items()])
        except StoreError as err:
            _LOGGER.warning("%d accepted cards not kept: %s", len(due), err)
            return
        self._written.update(due)
        while len(self._written) > _WRITTEN_KEPT:
            del self._written[next(iter(self._written))]

    async def known_by(self, id_tag: str) -> str | None:
        """The backend that accepted ``id_tag`` within ``known_card_days``, or None.

        A store fault is logged and counts as unknown (the card is then refused offline).
        """
        due = [(at, b) for (tag, b), at in self._due.items() if tag == id_tag]
        if due:
            return max(due)[1]  # accepted moments ago, not written yet
        try:
            return await self._store.card_known_by(id_tag, self._clock() - self._known_s)
        except StoreError as err:
            _LOGGER.warning("known cards unreadable (%s): card %s unknown", err, mask_card(id_tag))
            return None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
