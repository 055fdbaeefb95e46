"""The s3db.js filesystem layout (SPEC §12): body file K plus sidecar K.meta.json."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from ..errors import CorruptObject, DatabaseNotFound, MetadataFileError, NotFound, UsageError, os_error
from ..format.schema import check_database_json
from .base import ObjectInfo, RawObject
from ..format.keys import locale_sort_key
from .concurrency import threaded_ordered_map
from .fs_lister import SIDECAR, is_skipped as _skipped, scan_sidecars
from ..format.keys import DATABASE_JSON_KEY, check_resource_name, data_prefix


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)  # Python 3.11 reads the trailing "Z" as UTC


def iso_ms(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# Objects from which a listing runs in a second process (fs_lister.py): below, starting it
# (~20 ms) costs more than the overlap saves.
PARALLEL_LISTING_FROM = 20_000


def _list_versions(folder: str, prefix: str) -> Iterator[tuple[str, str, int]]:
    for name, ns, size in scan_sidecars(folder):
        yield prefix + name, f"fs:{ns}:{size}", ns // 1_000_000


def _list_versions_in_child(folder: str, prefix: str) -> Iterator[tuple[str, str, int]]:
    """The same listing, made by fs_lister.py in a child process and streamed back."""
    proc = subprocess.Popen([sys.executable, "-I", "-S", _LISTER, folder],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # a 1 MiB pipe (Linux) lets the lister run ~20,000 objects ahead instead of ~1,000
        fcntl.fcntl(proc.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default pipe works, a little slower
    try:
        tail = b""
        while chunk := proc.stdout.read1(1 << 18):
            fields = (tail + chunk).split(b"\0")
            whole = (len(fields) - 1) // 3 * 3  # the last field is unfinished (often empty)
            tail = b"\0".join(fields[whole:])
            for i in range(0, whole, 3):  # names as os.fsdecode gives them, without its cost
                yield prefix + fields[i].decode("utf-8", "surrogateescape"), fields[i + 1].decode(), int(fields[i + 2])
        stderr = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0 or tail:
            raise OSError(f"listing {folder} failed (lister exit code {proc.returncode}): {stderr.strip()[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


_LISTER = str(Path(__file__).with_name("fs_lister.py"))  # run by path: no package import


class FilesystemStore:
    """A database in s3db.js's `file://` layout."""

    listing_sorted = False  # data listings come in directory order
    # Reading an object here is Python CPU (two files, a JSON sidecar) like decoding it: a
    # backup's workers read their own batches (engine/decoding.py); the store pickles as its path.
    reads_in_workers = True

    def __init__(self, base_path: str | os.PathLike, url: str | None = None, create: bool = False):
        self.base = Path(base_path)
        self._base = str(self.base)
        self._made_dirs: set[str] = set()
        self.url = url or f"file://{self.base}"
        if create:
            self.base.mkdir(parents=True, exist_ok=True)
        elif not self.base.is_dir():
            raise NotFound(f"database folder {self.base} does not exist")

    # -- paths ---------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        # plain strings, not pathlib: this runs twice per object on the hot path
        if "//" in key or key.startswith("/") or key.endswith("/") or "/./" in key or "/../" in key \
                or key.startswith(("./", "../")) or key.endswith(("/.", "/..")) or key in (".", ".."):
            raise CorruptObject(f"key {key!r} cannot be stored in the filesystem layout")
        return f"{self._base}/{key}"

    def _sidecar(self, key: str) -> Path:
        return Path(self._file(key) + SIDECAR)

    def _read_sidecar(self, key: str, with_version: bool = False):
        side = self._file(key) + SIDECAR
        try:
            with open(side, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size > MAX_SIDECAR_BYTES:
                    raise CorruptObject(
                        f"{side}: sidecar is {st.st_size:,} bytes; s3db.js keeps an object's metadata under "
                        f"{METADATA_LIMIT:,} bytes (8 KB on R2), so this is no object it wrote: fix or remove it")
                raw = f.read()
            data = orjson.loads(raw)
        except FileNotFoundError:
            if os.path.exists(self._file(key)):
                raise CorruptObject(
                    f"{self._file(key)}: data file without its sidecar {os.path.basename(side)}; "
                    "restore the sidecar or remove the file"
                ) from None
            raise NotFound(f"object {key!r} not found in {self.base}") from None
        except orjson.JSONDecodeError as exc:
            raise CorruptObject(f"{side}: sidecar is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("metadata", {}), dict):
            raise CorruptObject(f"{side}: sidecar has no 'metadata' object")
        if with_version:
            return data, f"fs:{st.st_mtime_ns}:{st.st_size}"
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
            backups = sorted(e.name for e in os.scandir(self.base) if e.is_dir() and (Path(e.path) / "s3db.json").is_file()
                             and any(n.endswith(".jsonl.gz") for n in os.listdir(e.path)))[:3] \
                if self.base.is_dir() else []
            hint = (f"; it holds backups ({', '.join(backups)}): it is a backup repository, give it as --repo"
                    if backups else f"; is {self.base} an s3db.js database folder?")
            raise DatabaseNotFound(f"{path}: s3db.json not found{hint}") from None
        try:
            side = self._read_sidecar(DATABASE_JSON_KEY)
            if side.get("compressed"):
                raw = gzip.decompress(raw)
        except NotFound:
            pass
        except CorruptObject:
            if _is_backup_manifest(raw):  # the folder of one backup, not a database
                raise UsageError(f"{self.base} is a backup (its s3db.json is a backup manifest), not an s3db.js "
                                 f"database: give its parent as --repo, e.g. `backup-pipeline restore "
                                 f"{self.base.name} --repo {self.base.parent} --target FOLDER`") from None
            raise
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MetadataFileError(f"{path}: s3db.json is not valid JSON ({exc})") from None
        return check_database_json(data, str(path))

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

    def _scan_data(self, resource: str) -> Iterator[os.DirEntry]:
        """The entries of a resource's data folder, streamed (never the whole listing in memory)."""
        try:
            it = os.scandir(self._file(data_prefix(resource).rstrip("/")))
        except FileNotFoundError:
            return
        with it:
            yield from it

    def list_data_versions(self, resource: str, expected: int | None = None,
                           after: str | None = None) -> Iterator[tuple[str, str, int]]:
        """(key, change token, last modified ms), streamed in directory order (stable while the
        names exist: s3db.js rewrites a sidecar by renaming a new file over it), one stat per
        object: the sidecar's mtime and size are its change token, so no sidecar is read.
        `expected` (the caller's guess of the count) moves large listings to a second process;
        `after` is of no use to a directory listing (the caller filters)."""
        prefix = data_prefix(resource)
        folder = self._file(prefix.rstrip("/"))
        if expected is not None and expected >= PARALLEL_LISTING_FROM:
            return _list_versions_in_child(folder, prefix)
        return _list_versions(folder, prefix)

    def list_data_keys(self, resource: str, after: str | None = None) -> Iterator[str]:
        """Keys only, streamed without reading sidecars: what a full backup needs (it fetches
        every object anyway). Unsorted: order does not matter to a backup. A body file whose
        sidecar is missing is yielded too, so fetching it fails naming the file (never a
        silent drop)."""
        prefix = data_prefix(resource)
        for entry in self._scan_data(resource):
            name = entry.name
            if name.endswith(SIDECAR):
                if not _skipped(name[: -len(SIDECAR)]):
                    yield prefix + name[: -len(SIDECAR)]
            elif not _skipped(name) and not entry.is_dir(follow_symlinks=False) \
                    and not os.path.exists(entry.path + SIDECAR):
                yield prefix + name  # an orphan body: get() names it

    def get(self, key: str) -> RawObject:
        if not key.isascii() and not _is_utf8(key):
            # S3 keys are UTF-8: a file name that is not (listed with surrogate escapes) cannot be
            # one, nor be written into a backup line
            raise CorruptObject(f"{self._file(key)!a}: file name is not valid UTF-8, so it is no s3db.js key; "
                                "rename or remove the file")
        side, version = self._read_sidecar(key, with_version=True)
        info = self._info(key, side)
        path = self._file(key)
        if info.size == 0 and info.etag == EMPTY_ETAG and not side.get("compressed"):
            # Most s3db.js objects are metadata-only: when the sidecar's size and md5 both say
            # the body is empty, we only check the body file exists instead of reading it.
            if not os.path.isfile(path):
                raise NotFound(f"object {key!r}: body file {path} is missing")
            body = b""
        else:
            try:
                with open(path, "rb") as f:
                    body = f.read()
            except FileNotFoundError:
                raise NotFound(f"object {key!r}: body file {path} is missing") from None
        if side.get("compressed"):
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise CorruptObject(f"{self._path(key)}: compressed body does not gunzip ({exc})") from None
        return RawObject(
            key=key,
            metadata=_string_metadata(side.get("metadata", {})),
            content_type=side.get("contentType"),
            body=body,
            etag=info.etag,
            last_modified=info.last_modified,
            extra={"version": version},
        )

    def get_many(self, keys: Iterable[str], concurrency: int = 1) -> Iterator[RawObject]:
        # Local reads are CPU-bound in Python: threads only add GIL contention (measured in
        # bench/store_bench.py: 8 threads ran 5x slower than 1), so the default is sequential.
        if concurrency <= 1:
            return map(self.get, keys)
        return threaded_ordered_map(self.get, keys, concurrency)

    def put(self, obj: RawObject, create_only: bool = False) -> bool:
        """Write the object; with create_only, only if absent (returns False if present). A write
        that fails (a full disk) leaves no part of the object behind and names the file."""
        try:
            return self._put(obj, create_only)
        except OSError as exc:
            raise os_error(exc, self._file(obj.key)) from exc

    def _put(self, obj: RawObject, create_only: bool, fresh: bool = False) -> bool:
        path = self._file(obj.key)
        folder = os.path.dirname(path)
        if folder not in self._made_dirs:
            os.makedirs(folder, exist_ok=True)
            self._made_dirs.add(folder)
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
        side_path = path + SIDECAR
        side_bytes = orjson.dumps(sidecar, option=orjson.OPT_INDENT_2)
        if create_only:
            # the sidecar is the object's existence: claim it exclusively, then write the body
            tmp = _temp_name(side_path)
            _write(tmp, side_bytes)
            try:
                os.link(tmp, side_path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
            try:
                _write(path, obj.body)
            except OSError:
                os.unlink(side_path)  # the claim goes with the body that could not be written
                raise
            return True
        if fresh:
            # a restore into an empty resource: no object to replace, and an interrupted write
            # is flagged by the restore's marker, so no stat, no temporary name, no rename
            _write(path, obj.body)
            try:
                _write(side_path, side_bytes)
            except OSError:
                os.unlink(path)  # no body left without its sidecar (a full disk)
                raise
            return True
        # Body first, sidecar last, the sidecar by rename: a listing sees the object only once
        # its sidecar is complete. A new object's body goes straight to its name (file creation
        # costs ~130 us here, so one create less per object matters); an existing object's
        # body is replaced by rename, so a reader never sees a new body with the old sidecar.
        if os.path.exists(side_path):
            tmp = _temp_name(path)
            _write(tmp, obj.body)
            os.replace(tmp, path)
        else:
            _write(path, obj.body)
        tmp = _temp_name(side_path)
        _write(tmp, side_bytes)
        os.replace(tmp, side_path)
        return True

    def put_many(self, objs: Iterable[RawObject], concurrency: int = 1, fresh: bool = False) -> None:
        def put(obj: RawObject) -> bool:
            try:
                return self._put(obj, False, fresh)
            except OSError as exc:
                raise os_error(exc, self._file(obj.key)) from exc

        for _ in (map(put, objs) if concurrency <= 1 else threaded_ordered_map(put, objs, concurrency)):
            pass

    def delete(self, key: str) -> None:
        for p in (self._sidecar(key), self._path(key)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        pass


# s3db.js's metadata limit is 2047 bytes (8 KB on R2, SPEC §7); a sidecar also holds the
# transport-encoded values and a few fields, so anything near a megabyte is no object it wrote:
# refused before it is read, which keeps one object's memory bounded.
METADATA_LIMIT = 2047
MAX_SIDECAR_BYTES = 1 << 20

EMPTY_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'  # md5 of no bytes


def _string_metadata(metadata: dict) -> dict[str, str]:
    """Metadata values as S3 would return them: strings (a hand-edited sidecar may hold others)."""
    for v in metadata.values():
        if type(v) is not str:
            return {str(k): str(v) for k, v in metadata.items()}
    return metadata


def _temp_name(path: str) -> str:
    """A per-process temporary name next to `path` (s3db.js skips `*.tmp.*`)."""
    return f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"


def _is_backup_manifest(raw: bytes) -> bool:
    """A backup_pipeline manifest (s3db.json of a backup folder), told by its keys."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and "chain" in data and "formatVersion" in data and "database" in data


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _write(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError:
        try:
            os.unlink(path)  # a partial body or sidecar would look like a (corrupt) object
        except OSError:
            pass
        raise
