"""The parent's key index of one resource, on disk (SQLite in a temporary file), so that an
incremental's memory stays flat however many records the resource holds.

Each entry: key -> (version token, content hash). The version token is what a listing says
about an object without fetching it (S3: ETag|LastModified|size; filesystem: the sidecar's
mtime and size); the content hash covers metadata, content type and body.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from typing import Iterable, Iterator  # noqa: F401

import orjson

from .. import codecs
from ..errors import IntegrityError
from ..repository.encrypted import unseal

BATCH = 5000


class ParentIndex:
    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="backup-index-", suffix=".sqlite")
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.executescript("""
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;
            CREATE TABLE idx (key TEXT PRIMARY KEY, token TEXT, digest TEXT, seen INTEGER DEFAULT 0) WITHOUT ROWID;
        """)

    @classmethod
    def load(cls, repo, backup_id: str, index: dict) -> "ParentIndex":
        self = cls()
        where = repo.describe(backup_id, index["file"])

        def rows() -> Iterator[tuple[str, str, str]]:
            with repo.open_file(backup_id, index["file"]) as f:
                for n, line in enumerate(codecs.iter_lines(unseal(repo, f, where), index.get("compression", "gzip")), 1):
                    try:
                        key, token, digest = orjson.loads(line)
                    except (orjson.JSONDecodeError, ValueError, TypeError):
                        raise IntegrityError(f"{where}: line {n} is not an index entry") from None
                    yield key, token, digest

        batch: list = []
        for row in rows():
            batch.append(row)
            if len(batch) >= BATCH:
                self.db.executemany("INSERT OR REPLACE INTO idx (key, token, digest) VALUES (?, ?, ?)", batch)
                batch.clear()
        if batch:
            self.db.executemany("INSERT OR REPLACE INTO idx (key, token, digest) VALUES (?, ?, ?)", batch)
        self.db.commit()
        return self

    def diff(self, listing: Iterable, cutoff_ms: int):
        """Set-based diff of a listing (ObjectInfo with version) against the parent, in SQL:
        returns (unchanged, to_fetch, deleted) iterators. unchanged: (key, token, digest) of
        objects whose token matches and that are older than `cutoff_ms`; to_fetch: (key,
        parent digest or None when the token matched but the object is too recent to trust);
        deleted: keys of the parent that the listing did not show."""
        self.db.execute("CREATE TABLE cur (key TEXT PRIMARY KEY, token TEXT, lm INTEGER) WITHOUT ROWID")
        batch: list = []
        for info in listing:
            batch.append((info.key, info.version, int(info.last_modified.timestamp() * 1000)))
            if len(batch) >= BATCH:
                self.db.executemany("INSERT OR REPLACE INTO cur VALUES (?, ?, ?)", batch)
                batch.clear()
        if batch:
            self.db.executemany("INSERT OR REPLACE INTO cur VALUES (?, ?, ?)", batch)
        self.db.commit()

        def rows(sql: str, params=()):
            cur = self.db.execute(sql, params)
            while chunk := cur.fetchmany(1000):
                yield from chunk

        unchanged = rows("SELECT c.key, p.token, p.digest FROM cur c JOIN idx p ON p.key = c.key "
                         "WHERE p.token = c.token AND c.lm < ?", (cutoff_ms,))
        to_fetch = rows("SELECT c.key, CASE WHEN p.token = c.token THEN p.digest END FROM cur c "
                        "LEFT JOIN idx p ON p.key = c.key "
                        "WHERE p.key IS NULL OR p.token != c.token OR c.lm >= ?", (cutoff_ms,))
        deleted = rows("SELECT key FROM idx WHERE key NOT IN (SELECT key FROM cur) ORDER BY key")
        return unchanged, to_fetch, deleted

    def close(self) -> None:
        self.db.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class EmptyIndex:
    """No parent: nothing to diff against (a full snapshot)."""

    def close(self) -> None:
        pass
