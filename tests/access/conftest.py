"""Fixtures of the access tests: the synthetic world (per module) and an HTTP client."""

from access_world import client, world

__all__ = ["client", "world"]
