"""The s3db.js filesystem layout (SPEC §12): body file K plus sidecar K.meta.json."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from ..errors import CorruptObject, MetadataFileError, NotFound
from .base import ObjectInfo, RawObject
from .collation import locale_sort_key
from .concurrency import threaded_ordered_map
from .names import DATABASE_JSON_KEY, check_resource_name, data_prefix

SIDECAR = ".meta.json"


def _skipped(name: str) -> bool:
    """Files s3db.js itself ignores: backups, temp files, the journal."""
    return name.endswith(".bak") or ".tmp." in name or name == "operations.journal"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)  # Python 3.11 reads the trailing "Z" as UTC


def iso_ms(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class FilesystemStore:
    """A database in s3db.js's `file://` layout."""

    def __init__(self, base_path: str | os.PathLike, url: str | None = None, create: bool = False):
        self.base = Path(base_path)
        self.url = url or f"file://{self.base}"
        if create:
            self.base.mkdir(parents=True, exist_ok=True)
        elif not self.base.is_dir():
            raise NotFound(f"database folder {self.base} does not exist")

    # -- paths ---------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise CorruptObject(f"key {key!r} cannot be stored in the filesystem layout")
        return self.base.joinpath(*parts)

    def _sidecar(self, key: str) -> Path:
        p = self._path(key)
        return p.with_name(p.name + SIDECAR)

    def _read_sidecar(self, key: str) -> dict:
        side = self._sidecar(key)
        try:
            data = orjson.loads(side.read_bytes())
        except FileNotFoundError:
            if self._path(key).exists():
                raise CorruptObject(
                    f"{self._path(key)}: data file without its sidecar {side.name}; "
                    "restore the sidecar or remove the file"
                ) from None
            raise NotFound(f"object {key!r} not found in {self.base}") from None
        except orjson.JSONDecodeError as exc:
            raise CorruptObject(f"{side}: sidecar is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("metadata", {}), dict):
            raise CorruptObject(f"{side}: sidecar has no 'metadata' object")
        return data

    def _info(self, key: str, side: dict) -> ObjectInfo:
        try:
            last_modified = parse_iso(side["lastModified"])
        except (KeyError, TypeError, ValueError):
            raise CorruptObject(f"{self._sidecar(key)}: missing or invalid 'lastModified'") from None
        etag = side.get("etag") or ""
        size = side.get("size", side.get("contentLength", 0))
        return ObjectInfo(key=key, etag=f'"{etag.strip(chr(34))}"', last_modified=last_modified, size=int(size or 0))

    # -- protocol ------------------------------------------------------------------------
    def read_database_json(self) -> dict:
        path = self.base / DATABASE_JSON_KEY
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise MetadataFileError(
                f"{path}: s3db.json not found; is {self.base} an s3db.js database folder?"
            ) from None
        try:
            side = self._read_sidecar(DATABASE_JSON_KEY)
            if side.get("compressed"):
                raw = gzip.decompress(raw)
        except NotFound:
            pass
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MetadataFileError(f"{path}: s3db.json is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("resources", {}), dict):
            raise MetadataFileError(f"{path}: s3db.json has no 'resources' object")
        return data

    def list_resources(self) -> list[str]:
        return [check_resource_name(n) for n in self.read_database_json().get("resources", {})]

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, walking only the folders it can be in."""
        head, _, tail = prefix.rpartition("/")
        start = self._path(head) if head else self.base
        if not start.is_dir():
            return
        yield from self._walk(start, head + "/" if head else "", tail)

    def _walk(self, folder: Path, key_prefix: str, name_prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = [e for e in os.scandir(folder) if e.name.startswith(name_prefix)]
        except FileNotFoundError:
            return
        # s3db.js sorts with localeCompare; we sort each folder's entries the same way.
        entries.sort(key=lambda e: locale_sort_key(e.name))
        names = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), key_prefix + name + "/", "")
                continue
            if name.endswith(SIDECAR) or _skipped(name):
                continue
            key = key_prefix + name
            try:
                if name + SIDECAR not in names:
                    self._read_sidecar(key)  # raises the error that names the file
                yield self._info(key, self._read_sidecar(key))
            except CorruptObject:
                # Listed anyway, so that fetching it fails naming the key (or --skip-corrupt
                # records it): a damaged object is never silently left out of a backup.
                st = entry.stat()
                yield ObjectInfo(key=key, etag="", last_modified=datetime.fromtimestamp(st.st_mtime, timezone.utc),
                                 size=st.st_size)

    def list_data(self, resource: str) -> Iterator[ObjectInfo]:
        return self.list_prefix(data_prefix(resource))

    def get(self, key: str) -> RawObject:
        side = self._read_sidecar(key)
        info = self._info(key, side)
        try:
            body = self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"object {key!r}: body file {self._path(key)} is missing") from None
        if side.get("compressed"):
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise CorruptObject(f"{self._path(key)}: compressed body does not gunzip ({exc})") from None
        return RawObject(
            key=key,
            metadata={str(k): str(v) for k, v in side.get("metadata", {}).items()},
            content_type=side.get("contentType"),
            body=body,
            etag=info.etag,
            last_modified=info.last_modified,
        )

    def get_many(self, keys: Iterable[str], concurrency: int = 1) -> Iterator[RawObject]:
        # Local reads are CPU-bound in Python: threads only add GIL contention (measured in
        # bench/store_bench.py: 8 threads ran 5x slower than 1), so the default is sequential.
        if concurrency <= 1:
            return map(self.get, keys)
        return threaded_ordered_map(self.get, keys, concurrency)

    def put(self, obj: RawObject, create_only: bool = False) -> bool:
        """Write the object; with create_only, only if absent (returns False if present)."""
        path = self._path(obj.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        last_modified = obj.last_modified or datetime.now(timezone.utc)
        sidecar = {
            "metadata": obj.metadata,
            "contentType": obj.content_type or "application/octet-stream",
            "etag": hashlib.md5(obj.body).hexdigest(),
            "lastModified": iso_ms(last_modified),
            "size": len(obj.body),
            "contentLength": len(obj.body),
            "compressed": False,
            "expiresAt": None,
        }
        side_path = path.with_name(path.name + SIDECAR)
        side_bytes = orjson.dumps(sidecar, option=orjson.OPT_INDENT_2)
        if create_only:
            # the sidecar is the object's existence: claim it exclusively, then write the body
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=side_path.name + ".tmp.")
            with os.fdopen(fd, "wb") as f:
                f.write(side_bytes)
            try:
                os.link(tmp, side_path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
            _atomic_write(path, obj.body)
            return True
        # body first, sidecar last: a listing only sees the object once its sidecar exists
        _atomic_write(path, obj.body)
        _atomic_write(side_path, side_bytes)
        return True

    def put_many(self, objs: Iterable[RawObject], concurrency: int = 1) -> None:
        for _ in (map(self.put, objs) if concurrency <= 1 else threaded_ordered_map(self.put, objs, concurrency)):
            pass

    def delete(self, key: str) -> None:
        for p in (self._sidecar(key), self._path(key)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        pass


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
