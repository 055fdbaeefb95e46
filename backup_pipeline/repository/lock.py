"""Leases: one writer per repository and source at a time, one restore per target.

A lease is a small JSON object (owner, host, pid, acquired, heartbeat, ttl) created with a
create-only write (S3: If-None-Match: *; filesystem: an exclusive link). While held, a thread
renews its heartbeat every ttl/3. A lease whose heartbeat is older than its ttl, or whose owner
process on this same host is gone, is stale and is taken over: deleted only if it still holds the exact stale content that was
read, then created anew. A second writer waits up to `wait` seconds, then fails with LockHeld
(its own exit code, 7), naming the owner.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import orjson

from ..errors import ConflictError


class LockHeld(ConflictError):
    exit_code = 7


class LeaseBackend(Protocol):
    url: str

    def read_root(self, name: str) -> bytes | None: ...

    def create_root(self, name: str, data: bytes) -> bool: ...

    def replace_root(self, name: str, data: bytes) -> None: ...

    def delete_root(self, name: str) -> None: ...


def lock_name(kind: str, subject: str) -> str:
    return f"locks/{kind}-{hashlib.sha256(subject.encode()).hexdigest()[:16]}.json"


@dataclass
class Lease:
    backend: LeaseBackend
    name: str
    owner: str
    ttl: float
    subject: str
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    def _body(self, acquired: str) -> bytes:
        return orjson.dumps({
            "owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "subject": self.subject,
            "acquired": acquired, "heartbeat": time.time(), "ttl": self.ttl,
        })

    def _heartbeat_loop(self, acquired: str) -> None:
        while not self._stop.wait(self.ttl / 3):
            current = _parse(self.backend.read_root(self.name))
            if current.get("owner") != self.owner:
                return  # taken over (we were presumed dead): do not fight for it
            self.backend.replace_root(self.name, self._body(acquired))

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
        return orjson.loads(data)
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


def acquire(backend: LeaseBackend, kind: str, subject: str, *, ttl: float = 60.0, wait: float = 0.0,
            poll: float = 0.5) -> Lease:
    name = lock_name(kind, subject)
    lease = Lease(backend, name, owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", ttl=ttl,
                  subject=subject)
    acquired = datetime.now(timezone.utc).isoformat()
    deadline = time.monotonic() + wait
    while True:
        if backend.create_root(name, lease._body(acquired)):
            break
        raw = backend.read_root(name)
        held = _parse(raw)
        if raw is not None and _is_stale(held, ttl):
            # stale: delete it only if it is still the very lease we judged stale
            if backend.read_root(name) == raw:
                backend.delete_root(name)
            continue
        if time.monotonic() >= deadline:
            age = time.time() - float(held.get("heartbeat", time.time()))
            raise LockHeld(
                f"{kind} lock on {subject} is held by {held.get('owner', '?')} (pid {held.get('pid', '?')} on "
                f"{held.get('host', '?')}, heartbeat {age:.0f}s ago, ttl {held.get('ttl', '?')}s) in {backend.url}; "
                "wait for it to finish, or retry with --lock-wait SECONDS"
            )
        time.sleep(poll)  # waiting for another process to release its lease
    lease._stop = threading.Event()
    lease._thread = threading.Thread(target=lease._heartbeat_loop, args=(acquired,), daemon=True, name="lease-heartbeat")
    lease._thread.start()
    return lease


class StoreLeaseBackend:
    """Leases inside an s3db.js database (for restore targets), under plugin=backup-pipeline/."""

    PREFIX = "plugin=backup-pipeline"

    def __init__(self, store):
        self.store, self.url = store, store.url

    def _key(self, name: str) -> str:
        return f"{self.PREFIX}/{name}"

    def read_root(self, name: str) -> bytes | None:
        from ..errors import NotFound

        try:
            return self.store.get(self._key(name)).body
        except NotFound:
            return None

    def create_root(self, name: str, data: bytes) -> bool:
        from ..store import RawObject

        return self.store.put(RawObject(self._key(name), {}, "application/json", data), create_only=True)

    def replace_root(self, name: str, data: bytes) -> None:
        from ..store import RawObject

        self.store.put(RawObject(self._key(name), {}, "application/json", data))

    def delete_root(self, name: str) -> None:
        self.store.delete(self._key(name))
