"""Retention connector for HubSpot."""

__version__ = "0.1.0"
