"""The key index of a resource and the diff of a new listing against the parent's.

A backup's RESOURCE.index.jsonl.gz holds one line per live object, in the order the store
listed them: [key, version token, content hash]. The version token is what a listing says
about an object without fetching it (S3: ETag|LastModified|size; filesystem: the sidecar's
mtime and size); the content hash covers metadata, content type and body.

An incremental walks its listing and the parent's index side by side. Stores list in a stable
order (S3 sorts keys; a filesystem directory returns names in the same order while they
exist, rewrites included), so in practice every listed key is found at the head of the
parent's index: the diff costs a dict lookup per object and an unchanged entry's line is
carried over byte for byte. Memory holds a bounded window of the parent's index.

The result never depends on the order, only the cost does: a listed key not found in the
window is fetched and kept *pending*, a parent entry passed over is *spilled*, both into a
small SQLite file, and the two are settled when the listing ends (a pending object whose
token and content equal its spilled parent entry is unchanged; a spilled entry nobody
listed was deleted).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections import deque
from typing import Iterable, Iterator


from ..repository.files import read_lines
from ..repository.manifest import IndexFile, KeyRange, ResourceEntry, parse_index_line

# Parent entries read ahead of the listing at most (each ~250 bytes in memory).
WINDOW = 8192
# Misses in a row, with a full window, after which the window is assumed to be stuck on
# entries nobody will list (a long run of deletions) and its older half is spilled.
STUCK_AFTER = 64
# A round: at most this many listed objects, or this many to fetch (see KeyDiff.rounds).
ROUND_OBJECTS = 4096
ROUND_FETCHES = 512


def read_index(repo, backup_id: str, index: IndexFile, check: bool = False) -> Iterator[tuple[str, str, str, bytes]]:
    """(key, token, digest, line with its newline) of a backup's key index, streamed; `check`:
    against what the manifest records of it (bytes, sha256, lines) at its end."""
    where = repo.describe(backup_id, index.file)
    for n, line in read_lines(repo, backup_id, index.file, index.compression, index if check else None):
        key, token, digest = parse_index_line(line, where, n)
        yield key, token, digest, line + b"\n"


def resource_index(repo, backup_id: str, entry: ResourceEntry, check: bool = False,
                   key_range: KeyRange | None = None) -> Iterator[tuple[str, str, str, bytes]]:
    """The key index of a whole resource (a sharded one's parts in key order), or of the keys in
    `key_range` only: the part with that very range when there is one, else every part's
    entries filtered. The caller checks entry.index_entries is not None (every piece indexed)."""
    pieces = entry.pieces()
    if key_range is not None:
        same = [p for p in pieces if p.key_range is not None and
                (p.key_range.after, p.key_range.upto) == (key_range.after, key_range.upto)]
        if same:
            yield from read_index(repo, backup_id, same[0].index, check)
            return
    for piece in pieces:
        for item in read_index(repo, backup_id, piece.index, check):
            if key_range is None or item[0] in key_range:
                yield item


# What the diff says of one listed object: a plain tuple (kind, key, token, detail), built
# 200,000 times a second.
SAME = "same"  # unchanged: detail = the parent's index line, carried over
CHANGED = "changed"  # fetch and write
SUSPECT = "suspect"  # same token but too recent to trust: fetch, write if its content hash differs from detail
PENDING = "pending"  # not found in order: fetch, settled by KeyDiff.settle()
Verdict = tuple  # (kind, key, token, detail)


class KeyDiff:
    """Diffs a listing, one object at a time in listing order, against a parent's index."""

    def __init__(self, parent: Iterator[tuple[str, str, str, bytes]], cutoff_ms: int,
                 sorted_listing: bool = False, window: int | None = None):
        self._parent = parent
        self._cutoff = cutoff_ms  # objects modified at or after this may hide a change: re-fetch
        self._sorted = sorted_listing  # a hint only: lets a miss tell a new key from deletions
        self._window = window or WINDOW
        self._ahead: dict[str, tuple[str, str, bytes]] = {}  # read, not yet listed
        self._order: deque[str] = deque()  # the same keys, in the parent's order
        self._misses = 0
        self._spill = _Spill()

    def classify(self, key: str, token: str, last_modified_ms: int) -> Verdict:
        if not self._ahead:
            # the usual case: the parent's next entry is this very key
            entry = next(self._parent, None)
            if entry is not None and entry[0] == key:
                entry = entry[1:]
            else:
                if entry is not None:
                    self._ahead[entry[0]] = entry[1:]
                    self._order.append(entry[0])
                entry = self._find(key)
        else:
            entry = self._find(key)
        if entry is None:
            self._missed()
            return PENDING, key, token, None
        self._misses = 0
        parent_token, digest, line = entry
        if parent_token != token:
            return CHANGED, key, token, None
        if last_modified_ms >= self._cutoff:
            return SUSPECT, key, token, digest
        return SAME, key, token, line

    def rounds(self, listing: Iterable[tuple[str, str, int]]) -> Iterator[list[Verdict]]:
        """The listing's verdicts, a round at a time: at most ROUND_OBJECTS listed objects or
        ROUND_FETCHES to fetch. The backup fetches a round's objects concurrently, then writes
        its index lines in listing order."""
        verdicts: list = []
        fetches = 0
        for key, token, last_modified_ms in listing:
            verdict = self.classify(key, token, last_modified_ms)
            verdicts.append(verdict)
            if verdict[0] is not SAME:
                fetches += 1
            if fetches >= ROUND_FETCHES or len(verdicts) >= ROUND_OBJECTS:
                yield verdicts
                verdicts, fetches = [], 0
        if verdicts:
            yield verdicts

    # -- the window over the parent's index -------------------------------------------------
    def _find(self, key: str) -> tuple[str, str, bytes] | None:
        entry = self._ahead.pop(key, None)
        if entry is not None:
            self._pass_over(until=key)
            return entry
        if self._sorted:
            self._spill_ahead_before(key)
        return self._read_until(key)

    def _read_until(self, key: str) -> tuple[str, str, bytes] | None:
        """Reads the parent forward until `key` (returned, and everything read before it
        spilled) or until the window is full (None)."""
        while len(self._ahead) < self._window:
            entry = next(self._parent, None)
            if entry is None:
                return None
            k = entry[0]
            if k == key:
                self._pass_over(until=None)
                return entry[1:]
            if self._sorted and k < key:
                self._spill.parent(entry)  # sorted: passed over, so not listed (deleted)
                continue
            self._ahead[k] = entry[1:]
            self._order.append(k)
            if self._sorted and k > key:
                return None  # sorted: `key` would have come before `k`, so it is new
        return None

    def _pass_over(self, until: str | None) -> None:
        """Spills the entries read before the one just matched (`until`; None: all of them):
        the listing went past them, so they were deleted or are listed out of order."""
        order, ahead = self._order, self._ahead
        while order:
            k = order.popleft()
            if k == until:
                return
            entry = ahead.pop(k, None)
            if entry is not None:
                self._spill.parent((k, *entry))

    def _spill_ahead_before(self, key: str) -> None:
        order, ahead = self._order, self._ahead
        while order and order[0] < key:
            k = order.popleft()
            self._spill.parent((k, *ahead.pop(k)))

    def _missed(self) -> None:
        if len(self._ahead) < self._window:
            return
        self._misses += 1
        if self._misses >= STUCK_AFTER:
            # stuck on entries nobody lists (a run of deletions longer than the window):
            # make room so that the window moves on
            for _ in range(len(self._order) // 2):
                k = self._order.popleft()
                self._spill.parent((k, *self._ahead.pop(k)))
            self._misses = 0

    # -- the end of the listing --------------------------------------------------------------
    def keep_pending(self, key: str, token: str, digest: str | None, line: bytes | None) -> None:
        """A PENDING object once fetched (digest None: it could not be read, so it is neither
        written nor reported deleted)."""
        self._spill.pending(key, token, digest, line)

    def settle(self) -> tuple[Iterator[bytes], Iterator[str], list[int]]:
        """After the listing: (data lines of the pending objects that changed or are new, keys
        deleted since the parent in key order, [count of pending objects found unchanged]).
        The count is filled once the first iterator is consumed."""
        for k in self._order:
            self._spill.parent((k, *self._ahead[k]))
        self._ahead.clear()
        self._order.clear()
        for entry in self._parent:
            self._spill.parent(entry)
        return self._spill.settle()

    def close(self) -> None:
        self._spill.close()


class _Spill:
    """Parent entries passed over and pending objects, on disk (SQLite in a temporary file)."""

    BATCH = 2000

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._parents: list = []
        self._pendings: list = []

    def parent(self, entry: tuple) -> None:
        self._parents.append(entry[:3])
        if len(self._parents) >= self.BATCH:
            self._flush()

    def pending(self, key: str, token: str, digest: str | None, line: bytes | None) -> None:
        self._pendings.append((key, token, digest, line))
        if len(self._pendings) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        db = self._open()
        db.executemany("INSERT OR REPLACE INTO parent VALUES (?, ?, ?)", self._parents)
        db.executemany("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)", self._pendings)
        self._parents.clear()
        self._pendings.clear()

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            fd, self._path = tempfile.mkstemp(prefix="backup-keydiff-", suffix=".sqlite")
            os.close(fd)
            self._db = sqlite3.connect(self._path)
            self._db.executescript("""
                PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;
                CREATE TABLE parent (key TEXT PRIMARY KEY, token TEXT, digest TEXT) WITHOUT ROWID;
                CREATE TABLE pending (key TEXT PRIMARY KEY, token TEXT, digest TEXT, line BLOB) WITHOUT ROWID;
            """)
        return self._db

    def settle(self):
        self._flush()
        db = self._db
        unchanged = [0]

        def rows(sql: str):
            cur = db.execute(sql)
            while chunk := cur.fetchmany(1000):
                yield from chunk

        def changed() -> Iterator[bytes]:
            for line, same in rows("SELECT c.line, p.token = c.token AND p.digest = c.digest FROM pending c "
                                   "LEFT JOIN parent p ON p.key = c.key WHERE c.digest IS NOT NULL"):
                if same:
                    unchanged[0] += 1
                else:
                    yield line

        deleted = (key for (key,) in rows("SELECT key FROM parent WHERE key NOT IN (SELECT key FROM pending) "
                                          "ORDER BY key"))
        return changed(), deleted, unchanged

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
