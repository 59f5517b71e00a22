"""Home Assistant: reading its states over the WebSocket API, and entities through MQTT."""
