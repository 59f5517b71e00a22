"""TLS: chargers over wss:// (security profile 2), with client certificates (profile 3), and
upstream links over wss:// with a CA file, a client certificate, or without verification.

A test CA is made per test with ``cryptography``; it signs a server certificate for
127.0.0.1 / localhost and a client certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.exceptions import InvalidHandshake, InvalidStatus

from tests.conftest import ConnectCharger, StartProxy, service

API_TOKEN = "api-token-for-tests-1"


@dataclass
class Pki:
    """PEM files of a test CA, a server certificate (127.0.0.1, localhost) and a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    ca_cert: x509.Certificate | None = None
    ca_key: ec.EllipticCurvePrivateKey | None = None

    def client_context(self, *, certificate: bool = False) -> ssl.SSLContext:
        """A client context trusting the test CA, presenting the client certificate if asked."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if certificate:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def charger_context(self, common_name: str, alt_names: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A client context presenting a new certificate from the test CA for ``common_name``
        (and subjectAltName DNS entries ``alt_names``)."""
        assert self.ca_cert is not None and self.ca_key is not None
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(common_name, key, self.ca_cert.subject, self.ca_key, alt_names=alt_names)
        folder = self.ca.parent
        cert_path, key_path = folder / f"{common_name}.pem", folder / f"{common_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(cert_path), str(key_path))
        return context

    def server_context(self, *, client_certificates: bool = False) -> ssl.SSLContext:
        """A server context with the server certificate; requiring client certificates if asked."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        if client_certificates:
            context.load_verify_locations(cafile=str(self.ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
    alt_names: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in alt_names]),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh test CA with a server and a client certificate, as PEM files in ``tmp_path``."""
    folder = tmp_path / "pki"
    folder.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("ocpp-proxy test CA", ca_key, None, ca_key, ca=True)
    files = Pki(*(folder / n for n in ("ca.pem", "srv.pem", "srv.key", "cli.pem", "cli.key")))
    files.ca_cert, files.ca_key = ca_cert, ca_key
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, subject, server in (
        (files.server_cert, files.server_key, "127.0.0.1", True),
        (files.client_cert, files.client_key, "CP_1", False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(subject, key, ca_cert.subject, ca_key, server=server)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
    return files


async def _status(port: int, context: ssl.SSLContext) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"https://127.0.0.1:{port}/status",
            ssl=context,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


# -- the charger side ------------------------------------------------------------------------


async def test_charger_connects_over_wss_with_the_ca_trusted(
    pki: Pki, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("energy_co")
    proxy = await start_proxy(
        ocpp_services=[service(csms)],
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        chargers=[{"id": "CP_1", "password": "right-password-1"}],
        api_token=API_TOKEN,
    )
    assert proxy.charger_url().startswith("wss://")
    charger = await connect_charger(
        proxy, password="right-password-1", ssl_context=pki.client_context()
    )
    await charger.boot()
    await csms.wait_for_call("BootNotification")
    security = (await _status(proxy.port, pki.client_context()))["security"]
    assert security == {"charger_auth": "basic", "tls": True, "client_certificates": False}


async def test_plain_ws_to_a_tls_proxy_gets_nowhere(pki: Pki, start_proxy: StartProxy) -> None:
    proxy = await start_proxy(ssl_certfile=str(pki.server_cert), ssl_keyfile=str(pki.server_key))
    with pytest.raises((InvalidHandshake, OSError, EOFError)):
        await websockets.connect(proxy.charger_url().replace("wss://", "ws://"), open_timeout=5)


async def test_client_certificate_required_with_ssl_client_ca(
    pki: Pki, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_client_ca=str(pki.ca),
        api_token=API_TOKEN,
    )
    charger = await connect_charger(proxy, ssl_context=pki.client_context(certificate=True))
    assert (await charger.boot()).status == "Accepted"
    # Without a certificate the TLS handshake fails (TLS 1.3: the client learns it on reading).
    with pytest.raises((InvalidHandshake, OSError, EOFError)):
        async with websockets.connect(
            proxy.charger_url("CP_2"),
            subprotocols=["ocpp1.6"],
            ssl=pki.client_context(),
            open_timeout=5,
        ):
            pass
    assert proxy.registry.get("CP_2") is None
    status = await _status(proxy.port, pki.client_context(certificate=True))
    assert status["security"]["client_certificates"] is True


async def _handshake_status(url: str, context: ssl.SSLContext) -> int:
    """101 when a charger's handshake over TLS opened, else the HTTP status it was refused with."""
    try:
        async with websockets.connect(url, subprotocols=["ocpp1.6"], ssl=context, open_timeout=5):
            return 101
    except InvalidStatus as err:
        return err.response.status_code


async def test_profile_3_ties_the_certificate_subject_cn_to_the_charge_point_id(
    pki: Pki, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_client_ca=str(pki.ca),
        api_token=API_TOKEN,
    )
    cp_1 = pki.client_context(certificate=True)  # CN=CP_1
    assert await _handshake_status(proxy.charger_url("CP_1"), cp_1) == 101
    # A valid certificate of another charge point is no ticket to this one.
    assert await _handshake_status(proxy.charger_url("CP_2"), cp_1) == 401
    assert await _handshake_status(proxy.charger_url("CP_2"), pki.charger_context("CP_2")) == 101
    # A SAN naming the id is not enough when the CN is what counts (the default).
    other = pki.charger_context("someone", alt_names=("CP_3",))
    assert await _handshake_status(proxy.charger_url("CP_3"), other) == 401
    assert [hub.id for hub in proxy.registry] == ["CP_1", "CP_2"]


async def test_profile_3_may_look_for_the_charge_point_id_in_the_san(
    pki: Pki, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_client_ca=str(pki.ca),
        client_certificate_id="san",
        api_token=API_TOKEN,
    )
    named = pki.charger_context("someone", alt_names=("CP_3", "CP_4"))
    assert await _handshake_status(proxy.charger_url("CP_4"), named) == 101
    assert await _handshake_status(proxy.charger_url("CP_5"), named) == 401
    cn_only = pki.client_context(certificate=True)  # CN=CP_1, no SAN
    assert await _handshake_status(proxy.charger_url("CP_1"), cn_only) == 401


# -- upstream --------------------------------------------------------------------------------


async def test_upstream_over_wss_with_the_ca_file(
    pki: Pki, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("energy_co", ssl_context=pki.server_context())
    assert csms.url.startswith("wss://")
    proxy = await start_proxy(ocpp_services=[service(csms, ca_file=str(pki.ca))])
    charger = await connect_charger(proxy)
    await charger.boot()
    assert (await csms.wait_for_call("BootNotification"))[0].charge_point_id == "CP_1"


async def test_upstream_refuses_a_certificate_it_cannot_verify(
    pki: Pki, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("energy_co", ssl_context=pki.server_context())
    proxy = await start_proxy(ocpp_services=[service(csms)])  # the system CAs only
    charger = await connect_charger(proxy)
    # Answered by the proxy itself as soon as the link's first attempt failed.
    assert (await charger.boot()).status == "Accepted"
    assert "CERTIFICATE_VERIFY_FAILED" in (proxy.hub().links["energy_co"].last_error or "")
    assert csms.connects == 0


async def test_upstream_presents_its_client_certificate(
    pki: Pki, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("energy_co", ssl_context=pki.server_context(client_certificates=True))
    proxy = await start_proxy(
        ocpp_services=[
            service(
                csms,
                ca_file=str(pki.ca),
                client_certfile=str(pki.client_cert),
                client_keyfile=str(pki.client_key),
            )
        ]
    )
    charger = await connect_charger(proxy)
    await charger.boot()
    await csms.wait_for_call("BootNotification")


async def test_upstream_without_verification_warns_at_every_connect(
    pki: Pki,
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ocpp_proxy")
    csms = await start_csms("energy_co", ssl_context=pki.server_context())
    proxy = await start_proxy(ocpp_services=[service(csms, verify_tls=False)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await csms.wait_for_call("BootNotification")
    warnings = [r for r in caplog.records if "verify_tls is false" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
