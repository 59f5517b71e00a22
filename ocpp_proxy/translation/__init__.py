"""Translation between OCPP 1.6J and OCPP 2.0.1 / 2.1, per backend link (docs/translation.md).

A backend whose ``version`` differs from the charger's gets every message in its own version:
:class:`Translator` turns each CALL and its answer from one version into the other, keeping
per link only what the answers need (transaction ids, ``seqNo`` counters, the actions of CALLs
in flight). Equal versions never reach this package.
"""

from ocpp_proxy.translation.common import Forward, Outcome, Refuse, Reply
from ocpp_proxy.translation.translator import Translator, translation_needed

__all__ = ["Forward", "Outcome", "Refuse", "Reply", "Translator", "translation_needed"]
