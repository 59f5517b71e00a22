"""Who may connect, over what, and how much: the proxy's security measures, one module each.

``charger_auth`` (HTTP Basic for chargers, security profiles 1 and 2; the charge point named
by a client certificate, profile 3), ``tls`` (wss:// on the charger side, client certificates
upstream), ``throttle`` (locking out repeated authentication failures), ``identity`` (what a
charge point id may be), ``schema`` (payload validation against the OCPP JSON schemas),
``connections`` (caps on open WebSockets, the handshake timeout), ``redaction`` (secrets out of
the logs and of recorded frames).
"""
