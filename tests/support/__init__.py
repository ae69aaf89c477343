"""Helpers shared by the unit and integration suites."""
