"""What the homeowner may do, the same way from the web page, the REST API and Home Assistant.

``commands`` builds the homeowner's commands to a charger for its OCPP version; ``settings``
changes the override, shared charging and the current limit, each change kept and audited.
"""
