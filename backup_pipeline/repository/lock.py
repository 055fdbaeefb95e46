"""Leases: who may write a repository (or restore into a database) right now (restic's locks).

Each holder creates its own small JSON file under `locks/` (kind, subject, group, owner, host,
pid, acquired, heartbeat, ttl), create-only, then lists the other holders: if one it conflicts
with is alive, it removes its own file and waits or fails with LockHeld (exit code 7), naming
that holder. Two arriving at the same instant may both back off; neither ever proceeds over the
other. While held, a thread renews the heartbeat every ttl/3.

Conflicts (`conflicts`):
- `backup` leases of the same subject (the source database) exclude each other, unless they share
  a group: the steps of one staged (Dagster) backup each hold a lease of that backup's group;
- `cleanup` is exclusive: it conflicts with every other lease of the repository;
- `restore` leases live in the target database (StoreLeaseBackend): one restore per target.

A holder whose heartbeat is older than its ttl, or whose process on this same host is gone, is
stale: its file is deleted (only if it still holds the exact content judged stale) and ignored.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import orjson

from ..errors import LockHeld, NotFound
from ..store import RawObject

LOCKS = "locks/"
EXCLUSIVE_KINDS = ("cleanup",)


@dataclass(frozen=True)
class LockOptions:
    wait: float = 0.0  # seconds to wait for a conflicting holder to finish
    ttl: float = 60.0  # a heartbeat older than this makes a lease stale
    poll: float = 0.5  # how often a waiter looks again


class LeaseBackend(Protocol):
    """Small files at a root: what every repository (and StoreLeaseBackend) offers."""

    url: str

    def read_root(self, name: str) -> bytes | None: ...

    def create_root(self, name: str, data: bytes) -> bool: ...

    def replace_root(self, name: str, data: bytes) -> None: ...

    def delete_root(self, name: str) -> None: ...

    def list_root(self, prefix: str) -> list[str]: ...


def lease_prefix(kind: str, subject: str) -> str:
    """Every lease file of this kind and subject starts with this (then -OWNERTOKEN.json)."""
    return f"{LOCKS}{kind}-{hashlib.sha256(subject.encode()).hexdigest()[:16]}"


def conflicts(mine: dict, theirs: dict) -> bool:
    if mine.get("group") and mine.get("group") == theirs.get("group"):
        return False  # steps of one staged backup
    if mine.get("kind") in EXCLUSIVE_KINDS or theirs.get("kind") in EXCLUSIVE_KINDS:
        return True
    return mine.get("kind") == theirs.get("kind") and mine.get("subject") == theirs.get("subject")


@dataclass
class Lease:
    backend: LeaseBackend
    kind: str
    subject: str
    ttl: float
    group: str | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    acquired: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    @property
    def owner(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{self.token}"

    @property
    def name(self) -> str:
        return f"{lease_prefix(self.kind, self.subject)}-{self.token}.json"

    def body(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "group": self.group, "owner": self.owner,
                "host": socket.gethostname(), "pid": os.getpid(), "acquired": self.acquired,
                "heartbeat": time.time(), "ttl": self.ttl}

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if _parse(self.backend.read_root(self.name)).get("owner") != self.owner:
                return  # judged stale and removed by another: do not fight for it
            self.backend.replace_root(self.name, orjson.dumps(self.body()))

    def start_heartbeat(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat_loop, daemon=True, name="lease-heartbeat")
        self._thread.start()

    def release(self) -> None:
        if self._stop:
            self._stop.set()
            self._thread.join(timeout=5)
        if _parse(self.backend.read_root(self.name)).get("owner") == self.owner:
            self.backend.delete_root(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _parse(data: bytes | None) -> dict:
    if not data:
        return {}
    try:
        held = orjson.loads(data)
        return held if isinstance(held, dict) else {}
    except orjson.JSONDecodeError:
        return {"owner": "?", "heartbeat": 0, "ttl": 0}  # unreadable lease: treat as stale


def _is_stale(held: dict, ttl: float) -> bool:
    """Stale when its heartbeat is older than its ttl, or (like borg) when its owner ran on
    this host and that process no longer exists."""
    if time.time() - float(held.get("heartbeat", 0)) > float(held.get("ttl", ttl)):
        return True
    if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int):
        try:
            os.kill(held["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _holders(backend: LeaseBackend, lease: Lease) -> list[dict]:
    """The other live holders of the backend; stale ones are removed on the way."""
    out = []
    for name in backend.list_root(LOCKS):
        if name == lease.name or not name.endswith(".json"):
            continue
        raw = backend.read_root(name)
        if raw is None:
            continue  # released meanwhile
        held = _parse(raw)
        held.setdefault("kind", name[len(LOCKS):].split("-", 1)[0])  # leases written before "kind"
        if _is_stale(held, lease.ttl):
            if backend.read_root(name) == raw:  # still the very lease judged stale
                backend.delete_root(name)
            continue
        out.append(held)
    return out


def acquire(backend: LeaseBackend, kind: str, subject: str, options: LockOptions | None = None, *,
            group: str | None = None, ttl: float | None = None, wait: float | None = None,
            poll: float | None = None) -> Lease:
    """Take a lease, waiting up to options.wait for conflicting holders; LockHeld otherwise."""
    options = options or LockOptions()
    ttl = options.ttl if ttl is None else ttl
    wait = options.wait if wait is None else wait
    poll = options.poll if poll is None else poll
    lease = Lease(backend, kind, subject, ttl, group)
    deadline = time.monotonic() + wait
    while True:
        backend.create_root(lease.name, orjson.dumps(lease.body()))
        mine = lease.body()
        held = next((h for h in _holders(backend, lease) if conflicts(mine, h)), None)
        if held is None:
            lease.start_heartbeat()
            return lease
        backend.delete_root(lease.name)
        if time.monotonic() >= deadline:
            age = time.time() - float(held.get("heartbeat", time.time()))
            raise LockHeld(
                f"{kind} lock on {subject} is held by {held.get('kind', '?')} {held.get('subject', '?')!r} of "
                f"{held.get('owner', '?')} (pid {held.get('pid', '?')} on {held.get('host', '?')}, heartbeat "
                f"{age:.0f}s ago, ttl {held.get('ttl', '?')}s) in {backend.url}; wait for it to finish, or retry "
                "with --lock-wait SECONDS"
            )
        # waiting for another process to release its lease; jitter so two waiters do not meet again
        time.sleep(poll * (0.5 + random.random()))


class StoreLeaseBackend:
    """Leases inside an s3db.js database (for restore targets), under plugin=backup-pipeline/."""

    PREFIX = "plugin=backup-pipeline/"

    def __init__(self, store):
        self.store, self.url = store, store.url

    def read_root(self, name: str) -> bytes | None:
        try:
            return self.store.get(self.PREFIX + name).body
        except NotFound:
            return None

    def create_root(self, name: str, data: bytes) -> bool:
        return self.store.put(RawObject(self.PREFIX + name, {}, "application/json", data), create_only=True)

    def replace_root(self, name: str, data: bytes) -> None:
        self.store.put(RawObject(self.PREFIX + name, {}, "application/json", data))

    def delete_root(self, name: str) -> None:
        self.store.delete(self.PREFIX + name)

    def list_root(self, prefix: str) -> list[str]:
        return [info.key[len(self.PREFIX):] for info in self.store.list_prefix(self.PREFIX + prefix)]
