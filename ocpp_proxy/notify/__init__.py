"""Telling other systems what happens: events from the relay, delivered to webhooks."""
