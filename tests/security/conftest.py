"""Fixtures of the security tests: the access tests' synthetic world and an HTTP client."""

from access.access_world import client, world

__all__ = ["client", "world"]
