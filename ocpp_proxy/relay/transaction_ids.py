"""OCPP 1.6 transaction ids, one per backend, behind the one id the charger sees.

In OCPP 1.6 the central system assigns the transaction id in StartTransaction.conf (OCPP 1.6
§4.8) and both sides name it afterwards: the charger in MeterValues (§4.7) and
StopTransaction (§4.10), the central system in RemoteStopTransaction (§5.12) and in a TxProfile
(§5.16 ``csChargingProfiles.transactionId``). With several central systems each assigns its
own id, so the proxy gives the charger an id of its own and keeps, per charger transaction,
the id each backend assigned. Every backend then sees only its own ids.
"""

from __future__ import annotations

import re
from collections import OrderedDict

_TRANSACTION_ID = re.compile(r'("transactionId"\s*:\s*)(-?[0-9]+)(?![0-9.eE])')

#: How many finished transactions keep their id mapping (late answers, late stops).
_KEEP = 512


def rewrite_transaction_id(raw: str, old: int, new: int) -> str:
    """Return ``raw`` with every ``"transactionId": old`` changed to ``new``, all else kept.

    Args:
        raw: the text of a frame.
        old: the transaction id to replace.
        new: the transaction id to put in its place.
    """

    def swap(match: re.Match[str]) -> str:
        if int(match.group(2)) != old:
            return match.group(0)
        return match.group(1) + str(new)

    return _TRANSACTION_ID.sub(swap, raw)


class TransactionIds:
    """The map between the charger's transaction ids and each backend's (OCPP 1.6 §4.8).

    The charger's ids are the proxy's own, allocated durably by the store; this is the
    in-memory map the relay consults on every transaction message.
    """

    def __init__(self) -> None:
        # charger transaction id -> {backend id: backend transaction id}
        self._by_charger: OrderedDict[int, dict[str, int]] = OrderedDict()
        # (backend id, backend transaction id) -> charger transaction id
        self._by_backend: dict[tuple[str, int], int] = {}

    def load(self, known: dict[int, dict[str, int]]) -> None:
        """Take the map as the store kept it (charger id -> {backend id: its id})."""
        for charger_id, backends in known.items():
            self.add(charger_id)
            for backend_id, backend_transaction_id in backends.items():
                self.record(charger_id, backend_id, backend_transaction_id)

    def add(self, charger_id: int) -> None:
        """Remember a charger-side id the proxy just gave out (for a StartTransaction.conf)."""
        self._by_charger.setdefault(charger_id, {})
        while len(self._by_charger) > _KEEP:
            _, forgotten = self._by_charger.popitem(last=False)
            for key in forgotten.items():
                self._by_backend.pop(key, None)

    def record(self, charger_id: int, backend_id: str, backend_transaction_id: int) -> None:
        """Remember the id a backend assigned to the charger's transaction ``charger_id``."""
        self._by_charger.setdefault(charger_id, {})[backend_id] = backend_transaction_id
        self._by_backend[(backend_id, backend_transaction_id)] = charger_id

    def next_free(self, floor: int) -> int:
        """An id above every id remembered, at least ``floor`` (the store cannot give one)."""
        highest = max(self._by_charger, default=floor - 1)
        return max(floor, highest + 1)

    def charger_ids(self) -> list[int]:
        """The charger-side ids remembered, oldest first."""
        return list(self._by_charger)

    def is_known(self, charger_id: int) -> bool:
        """Whether ``charger_id`` was assigned by this proxy (and is still remembered)."""
        return charger_id in self._by_charger

    def for_backend(self, charger_id: int, backend_id: str) -> int | None:
        """Return the backend's id for the charger's transaction, or None if it has none."""
        ids = self._by_charger.get(charger_id)
        return None if ids is None else ids.get(backend_id)

    def to_charger(self, backend_id: str, backend_transaction_id: int) -> int | None:
        """Return the charger's id for a backend's transaction id, or None if unknown."""
        return self._by_backend.get((backend_id, backend_transaction_id))
