"""s3db.js storage behind one protocol: `open_store(conn)` gives a filesystem or S3 store."""

from __future__ import annotations

from .base import ObjectInfo, RawObject, Store
from .connection import ConnectionInfo, parse_connection_string, with_credentials
from ..format.keys import check_resource_name, id_from_key


def open_store(conn: str, *, create: bool = False, access_key_id: str | None = None,
               secret_access_key: str | None = None, session_token: str | None = None) -> Store:
    """Open the database a connection string points at (SPEC §1.1); credentials may come apart
    from it (so a stored connection string never holds a secret), not both."""
    info = with_credentials(parse_connection_string(conn), access_key_id, secret_access_key, session_token)
    if info.kind == "file":
        from .filesystem import FilesystemStore  # each kind imports only its own client libraries

        return FilesystemStore(info.base_path, url=info.masked(), create=create)
    from .s3 import S3Store  # obstore: only S3 databases load it

    return S3Store(info)


def store_url(conn: str, *, access_key_id: str | None = None, secret_access_key: str | None = None,
              session_token: str | None = None) -> str:
    """The url `open_store` would give the database (its identity in manifests: `Store.url`),
    from the connection string alone: nothing is opened, listed or read."""
    return with_credentials(parse_connection_string(conn), access_key_id, secret_access_key, session_token).masked()


__all__ = [
    "ConnectionInfo",
    "ObjectInfo",
    "RawObject",
    "Store",
    "check_resource_name",
    "id_from_key",
    "open_store",
    "store_url",
    "parse_connection_string",
]
