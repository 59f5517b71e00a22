"""The relay: routing of frames between a charger and its backends."""
