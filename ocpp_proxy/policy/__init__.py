"""The homeowner's policy: which commands may reach the charger, and the current limit."""
