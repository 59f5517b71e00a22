"""WebSocket plumbing: reading frames and the outbound client to upstream CSMSs."""
