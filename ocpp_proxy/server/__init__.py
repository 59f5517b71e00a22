"""The aiohttp server: charger and backend endpoints, status."""
