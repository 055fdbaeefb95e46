"""Backups in a local folder: <repo>/<backup-id>/<files>, manifest `s3db.json` last."""

from __future__ import annotations

import functools
import io
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator


from ..errors import ConflictError, NotFound, UsageError, os_error
from .base import MANIFEST_NAME, ROOT_NAMES, Location
from .manifest import Manifest
from .encryption import PLAIN
from .layout import backup_id_in, depth, resolve, split_template


def _check_name(name: str, what: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise UsageError(f"{what} {name!r} is not a plain file name")
    return name


def _named_errors(method):
    """A write of a small file (manifest, lease, crypto config) that fails names what it wrote."""

    @functools.wraps(method)
    def wrapper(self, name_or_id: str, *args, **kwargs):
        try:
            return method(self, name_or_id, *args, **kwargs)
        except OSError as exc:
            raise os_error(exc, f"{self.root}/{name_or_id}") from exc

    return wrapper


class _NamedFile(io.RawIOBase):
    """A file being written whose failures (a full disk) are named errors naming the file."""

    def __init__(self, f: BinaryIO, path: Path):
        self._f, self._path = f, path

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            raise os_error(exc, self._path) from exc


class FilesystemRepository:
    """A local folder; the path may hold a template ("./backups/{date}/")."""

    encryption = PLAIN  # open_repository sets the repository's own
    object_lock = None  # a folder has no object lock

    def __init__(self, path: str | os.PathLike):
        root, self.layout = split_template(str(path))
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root) + ("" if self.layout == "{id}" else "/" + self.layout)

    def _dir(self, backup_id: str) -> Path:
        return self.root / resolve(self.layout, _check_name(backup_id, "backup id"))

    def _path(self, backup_id: str, name: str) -> Path:
        return self._dir(backup_id) / _check_name(name, "file name")

    def describe(self, backup_id: str, name: str) -> str:
        return str(self._path(backup_id, name))

    def backup_dir(self, backup_id: str) -> str:
        return resolve(self.layout, _check_name(backup_id, "backup id"))

    def location(self) -> Location:
        return Location(str(self.root))

    def destinations(self) -> list:
        return [self]

    def exists(self) -> bool:
        return self.root.is_dir()

    def backup_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        pattern = "/".join(["*"] * depth(self.layout))
        ids = (backup_id_in(self.layout, p.relative_to(self.root).as_posix()) for p in self.root.glob(pattern)
               if p.is_dir() and not p.name.startswith(".") and p.name not in ROOT_NAMES)
        return sorted(i for i in ids if i is not None)

    @contextmanager
    def create_file(self, backup_id: str, name: str) -> Iterator[BinaryIO]:
        final = self._path(backup_id, name)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{name}.", suffix=".partial")
        except OSError as exc:
            raise os_error(exc, final) from exc
        try:
            with os.fdopen(fd, "wb") as f:
                yield _NamedFile(f, final)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise os_error(exc, final) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open_file(self, backup_id: str, name: str) -> BinaryIO:
        try:
            return open(self._path(backup_id, name), "rb")
        except FileNotFoundError:
            raise NotFound(f"{self._path(backup_id, name)}: file missing from backup {backup_id}") from None

    def file_size(self, backup_id: str, name: str) -> int:
        try:
            return self._path(backup_id, name).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"{self._path(backup_id, name)}: file missing from backup {backup_id}") from None

    def file_names(self, backup_id: str) -> list[str]:
        d = self._dir(backup_id)
        # hidden names are files still being written (".NAME.xxxx.partial")
        return sorted(p.name for p in d.iterdir() if p.is_file() and not p.name.startswith(".")) if d.is_dir() else []

    def last_modified(self, backup_id: str) -> datetime | None:
        d = self._dir(backup_id)
        try:
            # hidden ".NAME.xxxx.partial" files too: a file being written is activity
            stamps = [e.stat().st_mtime for e in os.scandir(d) if e.is_file()]
        except FileNotFoundError:
            return None
        return datetime.fromtimestamp(max(stamps), timezone.utc) if stamps else None

    def read_manifest(self, backup_id: str) -> Manifest | None:
        path = self._path(backup_id, MANIFEST_NAME)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return Manifest.parse(data, str(path))

    @_named_errors
    def commit_manifest(self, backup_id: str, manifest: Manifest) -> None:
        final = self._path(backup_id, MANIFEST_NAME)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{MANIFEST_NAME}.", suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            f.write(manifest.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        staging = Path(tmp)
        try:
            os.link(staging, final)  # link() fails if the name exists: a create-only commit
        except FileExistsError:
            raise ConflictError(f"{final}: backup {backup_id} is already committed; it is never overwritten") from None
        finally:
            staging.unlink(missing_ok=True)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- files at the repository root (crypto config, locks) ------------------------------
    def _root_path(self, name: str) -> Path:
        parts = name.split("/")
        for part in parts:
            _check_name(part, "root file name")
        return self.root.joinpath(*parts)

    def read_root(self, name: str) -> bytes | None:
        try:
            return self._root_path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    @_named_errors
    def create_root(self, name: str, data: bytes) -> bool:
        """Create-only; False if the file already exists (an exclusive create)."""
        path = self._root_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    @_named_errors
    def replace_root(self, name: str, data: bytes) -> None:
        path = self._root_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def delete_root(self, name: str) -> None:
        self._root_path(name).unlink(missing_ok=True)

    def list_root(self, prefix: str) -> list[str]:
        folder, _, start = prefix.rpartition("/")
        path = self._root_path(folder) if folder else self.root
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        # hidden names are files still being written (".NAME.xxxx.partial")
        return sorted(f"{folder}/{n}" if folder else n for n in names if n.startswith(start) and not n.startswith("."))

    def locked_until(self, backup_id: str) -> None:
        return None

    def extend_lock(self, backup_id: str, now) -> None:
        return None

    def delete_backup(self, backup_id: str) -> None:
        d = self._dir(backup_id)
        (d / MANIFEST_NAME).unlink(missing_ok=True)  # first: a half-removed backup is never complete
        shutil.rmtree(d, ignore_errors=True)
