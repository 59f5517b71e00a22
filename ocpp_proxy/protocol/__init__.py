"""OCPP-J itself: versions, frames, schemas and the proxy's local answers."""
