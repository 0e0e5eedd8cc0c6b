"""Monitoring: reference profile, drift, accuracy over time."""
