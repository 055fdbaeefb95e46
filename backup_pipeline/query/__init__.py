"""Querying backups where they are: DuckDB views (duckdb_views.py), a DuckDB connection to a
repository (connection.py) and Athena DDL (athena.py), over the repository's public methods
(where a file lives, where the root is). Import the module you need: the views import pyarrow,
which what needs only a connection should not pay for."""
