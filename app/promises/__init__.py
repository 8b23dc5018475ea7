"""Promises made to customers at wrap, and kept later."""
