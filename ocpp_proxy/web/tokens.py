"""REST API tokens and their roles: who a request is, and what it may do.

Roles, each allowing what the one before it does and more:

* ``read``: status, sessions, exports, insights, metrics, the audit and message logs, events;
* ``control``: also the homeowner's commands, the override, the current limit, shared charging;
* ``admin``: also API tokens and webhooks.

Tokens come from ``api_token`` (the admin token, named :data:`ADMIN_NAME`, read at each
request: it may be replaced at run time), ``api_tokens`` in the config (compared in constant
time), and tokens created through the API, of which only the SHA-256 is kept (looked up by
hash). Home Assistant ingress is admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from ocpp_proxy.config import API_ROLES, ApiTokenConfig
from ocpp_proxy.store.notify import TokenRow

READ: Final = "read"
CONTROL: Final = "control"
ADMIN: Final = "admin"

#: The name ``api_token`` goes by (in the audit log, in the token list).
ADMIN_NAME: Final = "api_token"
#: The name of requests through Home Assistant ingress.
INGRESS_NAME: Final = "ingress"
#: The name of token-less reads when ``api_public_read`` is on.
PUBLIC_NAME: Final = "public"
#: Names no token may take.
RESERVED: Final = frozenset({ADMIN_NAME, INGRESS_NAME, PUBLIC_NAME})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is (a token's name) and its role."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this identity's role includes ``role``."""
        return API_ROLES.index(self.role) >= API_ROLES.index(role)


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token, as kept in the store."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


class TokenBook:
    """The named tokens the API accepts besides ``api_token``, by name.

    Args:
        configured: the config's ``api_tokens``.
        stored: tokens made through the API (hashes only).
    """

    def __init__(
        self,
        configured: tuple[ApiTokenConfig, ...] = (),
        stored: list[TokenRow] | None = None,
    ) -> None:
        self._plain = [(t.token.encode(), Identity(t.name, t.role)) for t in configured]
        self._configured = {t.name for t in configured}
        self._hashed: dict[str, Identity] = {}
        self._created: dict[str, float] = {}
        for row in stored or []:
            self.add(row)

    def resolve(self, presented: str, admin_token: str) -> Identity | None:
        """The identity of a presented token, or None if none matches.

        ``admin_token`` is the current ``api_token`` (it may change at run time).
        """
        encoded = presented.encode()
        found = None
        if hmac.compare_digest(encoded, admin_token.encode()):
            found = Identity(ADMIN_NAME, ADMIN)
        for token, identity in self._plain:  # every one compared: no early exit on a match
            if hmac.compare_digest(encoded, token):
                found = identity
        return found or self._hashed.get(token_hash(presented))

    def add(self, row: TokenRow) -> None:
        """Accept a token made through the API."""
        self._hashed[row.token_sha256] = Identity(row.name, row.role)
        self._created[row.name] = row.created_at

    def remove(self, name: str) -> None:
        """Stop accepting the API-made token ``name``."""
        self._hashed = {h: i for h, i in self._hashed.items() if i.name != name}
        self._created.pop(name, None)

    def source(self, name: str) -> str | None:
        """Where token ``name`` comes from: ``api_token``, ``config``, ``api``, or None."""
        if name == ADMIN_NAME:
            return "api_token"
        if name in self._configured:
            return "config"
        return "api" if name in self._created else None

    def listing(self) -> list[dict[str, object]]:
        """Every token's name, role and source (never the secret), ``api_token`` first."""
        entries: list[dict[str, object]] = [
            {"name": i.name, "role": i.role, "source": self.source(i.name), "created_at": None}
            for i in (Identity(ADMIN_NAME, ADMIN), *(i for _, i in self._plain))
        ]
        entries += [
            {"name": i.name, "role": i.role, "source": "api", "created_at": self._created[i.name]}
            for i in self._hashed.values()
        ]
        return sorted(entries, key=lambda e: str(e["name"]))
