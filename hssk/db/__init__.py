"""Database access: one connection pool per process, on the embedded or a configured server."""

from hssk.db.database import Database, open_database

__all__ = ["Database", "open_database"]
