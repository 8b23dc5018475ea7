"""Calls domain."""
