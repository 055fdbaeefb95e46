"""Several repositories as one: strategy `all` (every one must succeed), `any` (at least one),
`priority` (the first that works, in order), with a real bound on concurrent uploads.

Writes fan out to at most `max_uploads` destinations at once (a tee); destinations beyond the
bound receive each file afterwards by a copy from one that has it. The manifest records, per
destination, what was written and what failed, and is committed to each destination that got
every file. Reads come from the first destination (in order) that holds the backup.
"""

from __future__ import annotations

import io
import shutil
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime
from typing import BinaryIO, Iterator

from ..errors import ConflictError, DestinationsFailed, NotFound, UsageError
from .base import Location, Repository
from .encryption import PLAIN
from .manifest import Manifest

STRATEGIES = ("all", "any", "priority")


class _Tee(io.RawIOBase):
    """Writes to every live destination; a failing one is dropped (and remembered)."""

    def __init__(self, writers: dict[str, BinaryIO], on_error):
        self.writers, self.on_error = writers, on_error

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        for url in list(self.writers):
            try:
                self.writers[url].write(data)
            except Exception as exc:  # noqa: BLE001 - recorded per destination
                del self.writers[url]
                self.on_error(url, exc)
        if not self.writers:
            raise DestinationsFailed("every destination failed while writing")
        return len(data)


class MultiRepository:
    encryption = PLAIN  # open_repository sets the repository's own (the destinations hold bytes as given)

    def __init__(self, repos: list[Repository], strategy: str = "all", max_uploads: int = 2):
        if strategy not in STRATEGIES:
            raise UsageError(f"strategy {strategy!r} unknown; choose all, any or priority")
        if not repos:
            raise UsageError("a multi repository needs at least one destination")
        if max_uploads < 1:
            raise UsageError("--max-uploads must be at least 1")
        self.repos, self.strategy, self.max_uploads = repos, strategy, max_uploads
        self.url = f"multi[{strategy}]:" + ",".join(r.url for r in repos)
        self._status: dict[str, dict[str, dict]] = {}  # backup id -> destination -> files, error
        self._chosen: dict[str, list[Repository]] = {}
        self._current: str | None = None

    @property
    def status(self) -> dict[str, dict]:
        """Per destination of the backup being written: files written and error."""
        return self._status.setdefault(self._current or "", {})

    # -- writing -------------------------------------------------------------------------
    def _targets(self, backup_id: str) -> list[Repository]:
        self._current = backup_id
        if backup_id not in self._chosen:
            self._chosen[backup_id] = list(self.repos) if self.strategy != "priority" else self._first_working()
            for r in self._chosen[backup_id]:
                self.status.setdefault(r.url, {"files": [], "error": None})
        return [r for r in self._chosen[backup_id] if self.status[r.url]["error"] is None]

    def _first_working(self) -> list[Repository]:
        """Priority: the first destination, in order, that answers a listing."""
        for r in self.repos:
            try:
                r.backup_ids()
                return [r]
            except Exception as exc:  # noqa: BLE001 - recorded, next one is tried
                self._fail(r.url, exc)
        raise DestinationsFailed(f"strategy priority: no destination answers: "
                                 f"{ {u: s['error'] for u, s in self.status.items()} }")

    def _fail(self, url: str, exc: Exception) -> None:
        self.status.setdefault(url, {"files": []})["error"] = f"{type(exc).__name__}: {exc}"

    def _check_enough(self, backup_id: str) -> None:
        alive = self._targets(backup_id)
        if self.strategy == "priority" and not alive:
            raise DestinationsFailed(f"strategy priority: the chosen destination failed mid-backup "
                                     f"({ {u: s['error'] for u, s in self.status.items()} }); run the backup "
                                     "again and the next working destination in order takes it")
        if self.strategy == "all" and any(self.status[r.url]["error"] for r in self._chosen[backup_id]):
            failed = {u: s["error"] for u, s in self.status.items() if s["error"]}
            raise DestinationsFailed(f"strategy all: destination(s) failed: {failed}")
        if not alive:
            raise DestinationsFailed(f"no destination succeeded: { {u: s['error'] for u, s in self.status.items()} }")

    @contextmanager
    def create_file(self, backup_id: str, name: str) -> Iterator[BinaryIO]:
        targets = self._targets(backup_id)
        self._check_enough(backup_id)
        direct, later = targets[: self.max_uploads], targets[self.max_uploads:]
        with ExitStack() as stack:
            writers = {}
            for r in direct:
                try:
                    writers[r.url] = stack.enter_context(r.create_file(backup_id, name))
                except Exception as exc:  # noqa: BLE001
                    self._fail(r.url, exc)
            if not writers:
                self._check_enough(backup_id)
            yield _Tee(writers, self._fail)
        for r in direct:
            if self.status[r.url]["error"] is None:
                self.status[r.url]["files"].append(name)
        # destinations beyond the upload bound get a copy, one at a time
        source = next((r for r in direct if self.status[r.url]["error"] is None), None)
        for r in later:
            try:
                with source.open_file(backup_id, name) as src, r.create_file(backup_id, name) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                self.status[r.url]["files"].append(name)
            except Exception as exc:  # noqa: BLE001
                self._fail(r.url, exc)
        self._check_enough(backup_id)

    def commit_manifest(self, backup_id: str, manifest: Manifest) -> None:
        self._check_enough(backup_id)
        targets = self._targets(backup_id)
        destinations = {
            url: {"ok": s["error"] is None, "files": list(s["files"]), "error": s["error"]}
            for url, s in self.status.items()
        }
        manifest = replace(manifest, destinations=destinations)
        for r in targets:
            try:
                r.commit_manifest(backup_id, manifest)
            except ConflictError:
                raise  # already committed there: never overwritten, and not a destination failure
            except Exception as exc:  # noqa: BLE001
                self._fail(r.url, exc)
                destinations[r.url].update(ok=False, error=str(exc))
        self._check_enough(backup_id)

    # -- reading: the first destination holding the backup -------------------------------
    # A destination that cannot be read (down, misconfigured) is passed over: the others
    # are there precisely for that case.
    def _each(self, fn):
        for r in self.repos:
            try:
                yield r, fn(r)
            except NotFound:
                continue
            except Exception:  # noqa: BLE001
                continue

    def _holder(self, backup_id: str) -> Repository:
        for r, m in self._each(lambda r: r.read_manifest(backup_id)):
            if m is not None:
                return r
        for r, ids in self._each(lambda r: r.backup_ids()):
            if backup_id in ids:
                return r
        raise NotFound(f"backup {backup_id} not found in any of {self.url}")

    def exists(self) -> bool:
        return any(ok for _r, ok in self._each(lambda r: r.exists()))

    def backup_ids(self) -> list[str]:
        return sorted({bid for _r, ids in self._each(lambda r: r.backup_ids()) for bid in ids})

    def open_file(self, backup_id: str, name: str) -> BinaryIO:
        return self._holder(backup_id).open_file(backup_id, name)

    def file_size(self, backup_id: str, name: str) -> int:
        return self._holder(backup_id).file_size(backup_id, name)

    def file_names(self, backup_id: str) -> list[str]:
        return self._holder(backup_id).file_names(backup_id)

    def last_modified(self, backup_id: str) -> datetime | None:
        stamps = [t for _r, t in self._each(lambda r: r.last_modified(backup_id)) if t is not None]
        return max(stamps) if stamps else None

    def read_manifest(self, backup_id: str) -> Manifest | None:
        for _r, m in self._each(lambda r: r.read_manifest(backup_id)):
            if m is not None:
                return m
        return None

    def delete_backup(self, backup_id: str) -> None:
        for r, ids in list(self._each(lambda r: r.backup_ids())):
            if backup_id in ids:
                r.delete_backup(backup_id)

    # -- object lock: each S3 destination has its own (folders have none) ----------------
    def _locked(self) -> list[Repository]:
        return [r for r, lock in self._each(lambda r: r.object_lock) if lock is not None]

    @property
    def object_lock(self):
        locked = self._locked()
        return locked[0].object_lock if locked else None

    def locked_until(self, backup_id: str) -> datetime | None:
        """The latest lock of any destination: a backup locked anywhere is not deleted anywhere."""
        dates = [d for r in self._locked() if (d := r.locked_until(backup_id)) is not None]
        return max(dates) if dates else None

    def extend_lock(self, backup_id: str, now: datetime) -> datetime | None:
        dates = [d for r in self._locked() if (d := r.extend_lock(backup_id, now)) is not None]
        return max(dates) if dates else None

    # -- root files: read from the first that has it, created on every destination ------
    def read_root(self, name: str) -> bytes | None:
        for _r, data in self._each(lambda r: r.read_root(name)):
            if data is not None:
                return data
        return None

    def create_root(self, name: str, data: bytes) -> bool:
        """Create-only on every reachable destination; if any already has it, undo and say no."""
        created, existed = [], False
        for r in self.repos:
            try:
                if r.create_root(name, data):
                    created.append(r)
                else:
                    existed = True
            except Exception:
                if self.strategy == "all":
                    for c in created:
                        c.delete_root(name)
                    raise
        if existed or not created:
            for c in created:
                c.delete_root(name)
            return False
        return True

    def replace_root(self, name: str, data: bytes) -> None:
        for r in self.repos:
            try:
                r.replace_root(name, data)
            except Exception:  # noqa: BLE001 - an unreachable destination is reported by writes
                if self.strategy == "all":
                    raise

    def delete_root(self, name: str) -> None:
        for r in self.repos:
            try:
                r.delete_root(name)
            except Exception:  # noqa: BLE001
                if self.strategy == "all":
                    raise

    def list_root(self, prefix: str) -> list[str]:
        return sorted({n for _r, names in self._each(lambda r: r.list_root(prefix)) for n in names})

    def describe(self, backup_id: str, name: str) -> str:
        return self._holder(backup_id).describe(backup_id, name)

    def backup_dir(self, backup_id: str) -> str:
        return self.repos[0].backup_dir(backup_id)

    def location(self) -> Location:
        """The first destination's: readers outside (DuckDB, Athena) read one copy."""
        return self.repos[0].location()

    def destinations(self) -> list[Repository]:
        return list(self.repos)
