"""A DuckDB connection that reads a repository's files in place (a local path, or s3:// with an
httpfs secret made from the repository's options). Apart from the views (duckdb_views.py) so
that what only needs a connection (the Dagster asset checks) does not import pyarrow."""

from __future__ import annotations

import os

import duckdb
import duckdb_ext


def connect(repo=None, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection able to read `repo`'s files; for S3 repositories httpfs is loaded
    from the installed package and an S3 secret made from the repository's options."""
    config = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    if not os.path.isdir(os.path.expanduser("~")):
        config["home_directory"] = "/tmp"  # duckdb 1.4 fails when HOME does not exist
    con = duckdb.connect(database, config=config)
    location = repo.location() if repo is not None else None
    if location is not None and location.is_s3:
        duckdb_ext.init(con)
        con.execute("LOAD httpfs")
        o = location.s3
        endpoint = o.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        parts = ["TYPE s3", f"REGION '{o.region or os.environ.get('AWS_REGION', 'us-east-1')}'"]
        key = o.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID")
        secret = o.secret_access_key or os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key:
            parts += [f"KEY_ID '{_q(key)}'", f"SECRET '{_q(secret or '')}'"]
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            parts += [f"ENDPOINT '{_q(host.rstrip('/'))}'", "URL_STYLE 'path'", f"USE_SSL {str(scheme == 'https').lower()}"]
        con.execute(f"CREATE OR REPLACE SECRET backup_repo ({', '.join(parts)})")
    return con


def file_url(repo, backup_id: str, name: str) -> str:
    """What DuckDB reads for a backup file: a local path or an s3:// URL (the repository says)."""
    return repo.describe(backup_id, name)


def _q(text: str) -> str:
    return text.replace("'", "''")
