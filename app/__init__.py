"""Tellonce: the call-centre agent console that carries the phone tree's context."""

__version__ = "0.1.0"
