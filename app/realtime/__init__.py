"""Realtime domain."""
