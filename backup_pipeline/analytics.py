"""DuckDB over backups in place: a connection that reads the repository's files (local or S3,
offline: the httpfs extension comes from the `duckdb-ext-httpfs` package, never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb


def connect(repo=None, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection able to read `repo`'s files; for S3 repositories httpfs is loaded
    from the installed package and an S3 secret made from the repository's options."""
    config = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    if not os.path.isdir(os.path.expanduser("~")):
        config["home_directory"] = "/tmp"  # duckdb 1.4 fails when HOME does not exist
    con = duckdb.connect(database, config=config)
    s3 = _s3_of(repo)
    if s3 is not None:
        import duckdb_ext

        duckdb_ext.init(con)
        con.execute("LOAD httpfs")
        o = s3.options
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
    """What DuckDB reads for a backup file: a local path or an s3:// URL."""
    s3 = _s3_of(repo)
    if s3 is not None:
        key = s3._key(backup_id, name)
        return f"s3://{s3.bucket}/{s3.prefix + '/' if s3.prefix else ''}{key}"
    return repo.describe(backup_id, name)


def _s3_of(repo):
    from .repository.s3 import S3Repository

    inner = getattr(repo, "inner", repo)  # through the encryption wrapper
    if isinstance(inner, S3Repository):
        return inner
    repos = getattr(inner, "repos", None)
    if repos:
        return _s3_of(repos[0])
    return None


def _q(text: str) -> str:
    return text.replace("'", "''")


def local_path(path: str) -> str:
    return str(Path(path).resolve())
