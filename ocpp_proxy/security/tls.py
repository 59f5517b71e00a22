"""TLS contexts: ``wss://`` for chargers (security profiles 2 and 3), and upstream clients.

OCPP 1.6 security whitepaper §2 / OCPP 2.0.1 part 2 A00: profile 2 is TLS with a server
certificate plus HTTP Basic; profile 3 adds a client certificate the server verifies. Both
require TLS 1.2 or higher.
"""

from __future__ import annotations

import logging
import ssl

from ocpp_proxy.config import ProxyConfig, ServiceConfig

_LOGGER = logging.getLogger(__name__)


def server_ssl_context(config: ProxyConfig) -> ssl.SSLContext | None:
    """The charger side's TLS context, or None for plain ``ws://``.

    In: the config; ``ssl_certfile`` / ``ssl_keyfile`` (PEM) turn TLS on, ``ssl_client_ca``
    (PEM bundle) makes a client certificate chaining to it mandatory (profile 3).
    Out: a server context with TLS 1.2 as the minimum. Raises ``OSError`` / ``ssl.SSLError``
    when a file cannot be read or the key does not match the certificate.
    """
    if not config.ssl_certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile or None)
    if config.ssl_client_ca:
        context.load_verify_locations(cafile=config.ssl_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_ssl_context(service: ServiceConfig) -> ssl.SSLContext | None:
    """The TLS context the proxy dials a ``wss://`` service with; None for ``ws://``.

    In: the service entry. The server certificate is verified against the system CAs or
    ``ca_file``, unless ``verify_tls`` is false; ``client_certfile`` / ``client_keyfile`` are
    presented as the proxy's client certificate (profile 3). TLS 1.2 at least.
    """
    if not service.url.lower().startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=service.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not service.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if service.client_certfile:
        context.load_cert_chain(service.client_certfile, service.client_keyfile or None)
    return context
