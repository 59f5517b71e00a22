"""Charge point ids: what may stand for a charge point's identity, checked before any use.

OCPP-J 1.6 §3.1.1 and OCPP 2.0.1 part 4 §3.2: the charge point (charging station) identity is
the last part of the URL, percent-encoded there, at most 48 characters (2.0.1 part 2,
``identifierString[48]``). The proxy uses it as a key of its records, as a label, and as a
path part of each service's URL: an id such as ``..`` would make the proxy dial a path outside
the service's URL with the service's credentials. So an id is refused unless it is 1-48
printable characters without ``/`` and is not ``.`` or ``..``. aiohttp percent-decodes a path
part and a query value exactly once; the id is checked on that decoded text and never decoded
again.
"""

from __future__ import annotations

#: The longest charge point id (OCPP 2.0.1 part 2: identifierString[48]).
MAX_CHARGE_POINT_ID = 48


def charge_point_id_problem(charge_point_id: str) -> str | None:
    """Why ``charge_point_id`` (decoded text) is no valid charge point id, or None if it is.

    In: the id as decoded once from the URL or the config. Out: a reason naming the rule
    broken (never raises).
    """
    if not charge_point_id:
        return "empty"
    if len(charge_point_id) > MAX_CHARGE_POINT_ID:
        return f"longer than {MAX_CHARGE_POINT_ID} characters"
    if "/" in charge_point_id or charge_point_id in (".", ".."):
        return "'.', '..' or with a '/'"
    if not charge_point_id.isprintable():
        return "a character that is not printable"
    return None
