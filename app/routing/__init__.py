"""Routing domain."""
