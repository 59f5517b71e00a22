"""Charger authentication with HTTP Basic: OCPP security profiles 1 and 2.

OCPP 1.6 security whitepaper §2 and OCPP 2.0.1 part 2 A00 (security profiles): the charger sends
``Authorization: Basic base64(<charge point id>:<password>)`` with its WebSocket handshake.
When ``chargers`` is configured, only those ids with their password get in; otherwise any id
may connect (``/status`` shows ``charger_auth: "open"``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from typing import Any

from ocpp_proxy.config import ChargerCredential

#: The realm in the ``WWW-Authenticate`` challenge (RFC 7617 §2).
REALM = "ocpp-proxy"
CHALLENGE = f'Basic realm="{REALM}"'


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """Split an ``Authorization: Basic ...`` header value (RFC 7617 §2).

    In: the header value. Out: ``(username, password)``, or None when the header is missing,
    of another scheme, or not valid base64 / UTF-8 / ``user:password``.
    """
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def check_charger(
    credentials: Sequence[ChargerCredential], charge_point_id: str, authorization: str
) -> str | None:
    """Whether a charger may connect as ``charge_point_id``.

    In: the configured ``chargers``, the id from the URL, the ``Authorization`` header value
    (``""`` if absent). Out: None when it may, else why not (without the password). An empty
    ``credentials`` lets every id in. The password is compared in constant time; the username
    must equal the charge point id (OCPP 2.0.1 part 2 A00, profile 1).
    """
    if not credentials:
        return None
    known = next((c for c in credentials if c.id == charge_point_id), None)
    presented = basic_credentials(authorization)
    if presented is None:
        return "no HTTP Basic credentials"
    username, password = presented
    # Compared even for an unknown id, so that the answer takes as long either way.
    expected = known.password if known is not None else ""
    password_ok = hmac.compare_digest(password.encode(), expected.encode())
    if known is None:
        return "unknown charge point id"
    if username != charge_point_id:
        return "the username is not the charge point id"
    if not known.password:  # set aside at config load: refused until it has one
        return "no password is configured for this charge point"
    return None if password_ok else "wrong password"


def certificate_names(peercert: dict[str, Any] | None, field: str) -> list[str]:
    """The names a verified client certificate gives its holder.

    In: ``ssl.SSLSocket.getpeercert()``'s dict (None without a certificate) and ``field``:
    ``"cn"`` for the subject's common names, ``"san"`` for the subjectAltName DNS and URI
    entries. Out: those names, in certificate order.
    """
    if not peercert:
        return []
    if field == "san":
        return [v for kind, v in peercert.get("subjectAltName", ()) if kind in ("DNS", "URI")]
    return [v for rdn in peercert.get("subject", ()) for k, v in rdn if k == "commonName"]


def certificate_problem(
    peercert: dict[str, Any] | None, charge_point_id: str, client_ca: str, field: str
) -> str | None:
    """Whether the client certificate ties the connection to ``charge_point_id`` (profile 3).

    OCPP 2.0.1 part 2 A00 (security profile 3) and the OCPP 1.6 security whitepaper §2: the
    charging station certificate's subject common name is its identity. In: the verified
    peer certificate (see :func:`certificate_names`), the charge point id from the URL,
    ``ssl_client_ca`` (``""``: no client certificates, nothing to check) and
    ``client_certificate_id`` (``"cn"`` or ``"san"``). Out: None when a name in ``field``
    equals the id exactly, else why not.
    """
    if not client_ca:
        return None
    names = certificate_names(peercert, field)
    if not names:
        return f"the client certificate has no {field.upper()} to identify the charge point"
    if charge_point_id not in names:
        return f"the client certificate's {field.upper()} is not the charge point id"
    return None
