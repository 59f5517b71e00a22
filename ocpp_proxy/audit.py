"""The audit log's one writer: every command to a charger and every homeowner setting.

A backend's or the homeowner's command is recorded with the arbiter's decision and the rule
that made it (see :mod:`ocpp_proxy.policy.rules`) and what the requester was answered; a
setting (override, shared charging, current limit) with who changed it and to what, whether
it came over the REST API or from Home Assistant.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ocpp_proxy.protocol.frames import Frame, dumps
from ocpp_proxy.security.redaction import mask_config_secrets
from ocpp_proxy.store import Store

#: The decisions written.
ALLOWED = "allowed"
REFUSED = "refused"


def summary(payload: Any, limit: int = 200) -> str:
    """A payload as compact JSON, cut to ``limit`` characters, for people reading the log.

    Charger passwords and keys in it are masked before it is cut (a cut must not leave half a
    secret in clear).
    """
    text = mask_config_secrets(dumps(payload or {}))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_summary(answer: Frame | None) -> str | None:
    """What the charger answered: ``code: description`` of a CALLERROR, else its payload."""
    if answer is None:
        return None
    if answer.error is not None:
        return f"{answer.error[0]}: {answer.error[1]}"
    return summary(answer.payload)


async def record_command(
    store: Store,
    charge_point_id: str,
    *,
    actor: str,
    action: str,
    payload: dict[str, Any] | None,
    allowed: bool,
    rule: str | None,
    reason: str | None,
    answer: Frame | None,
) -> int:
    """Record a command to charger ``charge_point_id`` and the arbiter's decision on it.

    Args:
        store: the proxy's store.
        charge_point_id: the charger the command is for.
        actor: who asked (a backend id, ``homeowner``, ``home_assistant``, ``proxy``).
        action: the OCPP action, e.g. ``RemoteStartTransaction``.
        payload: the CALL's payload (cut to 200 characters in the log).
        allowed: whether it passed the arbiter.
        rule: the rule that decided, if any.
        reason: why, if given.
        answer: the frame the requester got back, if any.

    Returns:
        The entry's id.

    Raises:
        StoreError: the database failed, or the store is closed.
    """
    return await record_entry(
        store,
        charge_point_id,
        actor=actor,
        action=action,
        summary=summary(payload),
        decision=ALLOWED if allowed else REFUSED,
        rule=rule,
        reason=reason or None,
        answer=answer_summary(answer),
    )


async def record_setting(store: Store, *, actor: str, action: str, value: dict[str, Any]) -> int:
    """Record that ``actor`` changed a setting of the whole proxy (no charger in particular).

    Args:
        store: the proxy's store.
        actor: who changed it (``homeowner`` over REST, ``home_assistant`` over MQTT).
        action: what, e.g. ``SetOverride``, ``SetSharedCharging``, ``SetMaxCurrent``.
        value: the new value, e.g. ``{"max_current_a": 10.0}``.

    Returns:
        The entry's id.

    Raises:
        StoreError: the database failed, or the store is closed.
    """
    return await record_entry(
        store, None, actor=actor, action=action, summary=json.dumps(value), decision=ALLOWED
    )


async def record_entry(
    store: Store,
    charge_point_id: str | None,
    *,
    actor: str,
    action: str,
    summary: str,
    decision: str,
    rule: str | None = None,
    reason: str | None = None,
    answer: str | None = None,
) -> int:
    """Record an audit line: a command, an API request, a home card added or removed, ...

    Args:
        store: the proxy's store.
        charge_point_id: the charger it concerns, or None for the whole proxy.
        actor: who (``homeowner``, ``api:<token name>``, ...).
        action: what, e.g. ``AddHomeCard`` or ``POST /api/v1/override``.
        summary: a line for people, already free of secrets and personal data.
        decision: ``allowed``, ``refused`` or ``requested`` (asked, the outcome recorded apart).
        rule: the arbiter's rule that decided, if any.
        reason: why, if given.
        answer: a summary of the answer the requester got, if any.

    Returns:
        The entry's id.

    Raises:
        StoreError: the database failed, or the store is closed.
    """
    return await store.audit(
        charge_point_id,
        actor=actor,
        action=action,
        summary=summary,
        decision=decision,
        rule=rule,
        reason=reason,
        answer=answer,
        at=time.time(),
    )
