"""Who may connect, over what, and how much: the proxy's security measures, one module each.

``charger_auth`` (HTTP Basic for chargers, security profiles 1 and 2), ``tls`` (wss:// on the
charger side, client certificates upstream, profile 3), ``throttle`` (slowing down repeated
authentication failures), ``schema`` (payload validation against the OCPP JSON schemas),
``connections`` (caps on open WebSockets, the handshake timeout), ``redaction`` (secrets out of
the logs).
"""
