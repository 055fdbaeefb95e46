"""Connection strings parsed exactly as s3db.js 21.x parses them (SPEC §1.1).

    file:///abs/dir | file://./rel/dir          filesystem layout, bucket "s3db", no prefix
    s3://KEY:SECRET@bucket/prefix?region=...    AWS S3, virtual-hosted addressing
    http(s)://KEY:SECRET@host:port/bucket/pfx   any S3-compatible endpoint, path-style

Credentials, bucket and path parts are URL-decoded; query parameters become client options
(dotted names nest, "true"/"false"/integers/decimals are converted), as in s3db.js.
Two options matter to us: `region`, and `forcePathStyle` (false switches an http(s)
endpoint to virtual-hosted addressing). `endpoint` on an s3:// string points it at an
S3-compatible server instead of AWS (the s3db.js client option of the same name).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit, parse_qsl

from ..errors import ConnectionStringError

DEFAULT_REGION = "us-east-1"
DEFAULT_BUCKET = "s3db"


@dataclass(frozen=True)
class ConnectionInfo:
    kind: str  # "file" or "s3"
    bucket: str = DEFAULT_BUCKET
    key_prefix: str = ""
    base_path: str | None = None  # filesystem layout only
    endpoint: str | None = None  # None = AWS
    region: str = DEFAULT_REGION
    access_key_id: str | None = None
    secret_access_key: str | None = None
    force_path_style: bool = False
    client_options: dict = field(default_factory=dict)

    def masked(self) -> str:
        """A printable form with the secret hidden."""
        if self.kind == "file":
            return f"file://{self.base_path}"
        cred = f"{self.access_key_id}:***@" if self.access_key_id else ""
        where = f"{self.endpoint}/{self.bucket}" if self.endpoint else f"s3://{self.bucket}"
        if self.endpoint is None:
            where = f"s3://{cred}{self.bucket}"
        else:
            scheme, _, hostport = self.endpoint.partition("://")
            where = f"{scheme}://{cred}{hostport}/{self.bucket}"
        return where + (f"/{self.key_prefix}" if self.key_prefix else "")


def _decode(part: str, what: str, conn: str) -> str:
    try:
        # decodeURIComponent: '+' stays '+', malformed escapes are errors
        if re.search(r"%(?![0-9A-Fa-f]{2})", part):
            raise ValueError(f"malformed percent-escape in {part!r}")
        return unquote(part, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConnectionStringError(
            f"connection string {_mask(conn)!r}: cannot URL-decode the {what}: {exc}"
        ) from None


def _mask(conn: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", conn)


def _coerce(value: str):
    if value == "true":
        return True
    if value == "false":
        return False
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value):
        return float(value)
    return value


def _query_options(query: str) -> dict:
    result: dict = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parts = key.split(".")
        current = result
        for p in parts[:-1]:
            if not isinstance(current.get(p), dict):
                current[p] = {}
            current = current[p]
        current[parts[-1]] = _coerce(value)
    return result


def parse_connection_string(conn: str) -> ConnectionInfo:
    if not isinstance(conn, str) or "://" not in conn:
        raise ConnectionStringError(
            f"connection string {_mask(str(conn))!r}: missing scheme; use file:///abs/path, "
            "file://./relative, s3://KEY:SECRET@bucket/prefix or http(s)://KEY:SECRET@host:port/bucket/prefix"
        )
    scheme = conn.split("://", 1)[0].lower()
    try:
        url = urlsplit(conn)
        port = url.port  # raises on a non-numeric port
    except ValueError as exc:
        raise ConnectionStringError(f"connection string {_mask(conn)!r}: {exc}") from None
    options = _query_options(url.query)

    if scheme == "file":
        return _parse_file(conn, url)
    if scheme not in ("s3", "http", "https"):
        raise ConnectionStringError(
            f"connection string {_mask(conn)!r}: unsupported scheme {scheme!r} "
            "(expected file, s3, http or https)"
        )
    key = _decode(url.username, "access key (user part)", conn) if url.username else None
    secret = _decode(url.password, "secret key (password part)", conn) if url.password else None
    region = str(options.get("region", DEFAULT_REGION))
    path_parts = url.path.split("/")[1:] if url.path not in ("", "/") else []

    if scheme == "s3":
        if not url.hostname:
            raise ConnectionStringError(
                f"connection string {_mask(conn)!r}: the bucket (host part) is empty"
            )
        # URL hostnames are lower-cased by the parser; take the raw host to keep the bucket as written.
        raw_host = url.netloc.rsplit("@", 1)[-1]
        bucket = _decode(raw_host, "bucket", conn)
        endpoint = options.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
            "AWS_ENDPOINT_URL"
        )
        return ConnectionInfo(
            kind="s3",
            bucket=bucket or DEFAULT_BUCKET,
            key_prefix="/".join(path_parts),
            endpoint=str(endpoint).rstrip("/") if endpoint else None,
            region=region,
            access_key_id=key,
            secret_access_key=secret,
            force_path_style=bool(options.get("forcePathStyle", False)),
            client_options=options,
        )

    # http(s)://: a custom S3-compatible endpoint, path-style unless told otherwise
    if not url.hostname:
        raise ConnectionStringError(f"connection string {_mask(conn)!r}: the host is empty")
    host = url.hostname + (f":{port}" if port else "")
    bucket = _decode(path_parts[0], "bucket", conn) if path_parts and path_parts[0] else DEFAULT_BUCKET
    return ConnectionInfo(
        kind="s3",
        bucket=bucket,
        key_prefix="/".join(path_parts[1:]),
        endpoint=f"{scheme}://{host}",
        region=region,
        access_key_id=key,
        secret_access_key=secret,
        force_path_style=bool(options.get("forcePathStyle", True)),
        client_options=options,
    )


def has_secret(conn: str) -> bool:
    """Whether a connection string carries a secret key (what must never be stored in config)."""
    try:
        return parse_connection_string(conn).secret_access_key is not None
    except ConnectionStringError:
        return False


def with_credentials(info: ConnectionInfo, access_key_id: str | None, secret_access_key: str | None,
                     session_token: str | None = None) -> ConnectionInfo:
    """The connection with credentials given apart from its string (e.g. from Dagster EnvVars)."""
    if not (access_key_id or secret_access_key or session_token):
        return info
    if info.kind != "s3":
        raise ConnectionStringError(f"{info.masked()}: credentials were given for a folder database")
    if info.access_key_id or info.secret_access_key:
        raise ConnectionStringError(f"{info.masked()}: credentials are given twice, in the connection string and "
                                    "apart; keep one")
    options = {**info.client_options, **({"sessionToken": session_token} if session_token else {})}
    return replace(info, access_key_id=access_key_id, secret_access_key=secret_access_key, client_options=options)


def _parse_file(conn: str, url) -> ConnectionInfo:
    host = url.netloc
    path = url.path
    if host in (".", ".."):
        path = host + path
    elif host and host != "localhost":
        raise ConnectionStringError(
            f"connection string {conn!r}: file:// takes a path, not a host {host!r}; "
            "use file:///absolute/path or file://./relative/path"
        )
    decoded = _decode(path, "path", conn)
    if decoded in ("", "/"):
        raise ConnectionStringError(
            f"connection string {conn!r}: file:// needs a path; "
            "use file:///absolute/path or file://./relative/path"
        )
    return ConnectionInfo(kind="file", base_path=os.path.abspath(decoded), region="local")
