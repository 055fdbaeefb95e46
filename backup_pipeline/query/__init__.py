"""Querying backups where they are: DuckDB views (duckdb_views.py) and Athena DDL (athena.py),
over the repository's public methods (where a file lives, where the root is)."""

from .duckdb_views import connect, create_views

__all__ = ["connect", "create_views"]
