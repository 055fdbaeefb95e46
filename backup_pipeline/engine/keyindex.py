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
from typing import Iterable, Iterator

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

    def take(self, key: str) -> tuple[str, str] | None:
        """The parent's (token, digest) of `key`, marking it seen (so it is no tombstone)."""
        row = self.db.execute("SELECT token, digest FROM idx WHERE key = ?", (key,)).fetchone()
        if row is not None:
            self.db.execute("UPDATE idx SET seen = 1 WHERE key = ?", (key,))
        return row

    def unseen(self) -> Iterator[str]:
        """Keys the listing never showed: deleted since the parent."""
        cur = self.db.execute("SELECT key FROM idx WHERE seen = 0 ORDER BY key")
        while rows := cur.fetchmany(1000):
            for (key,) in rows:
                yield key

    def close(self) -> None:
        self.db.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class EmptyIndex:
    def take(self, key: str):
        return None

    def unseen(self) -> Iterable[str]:
        return ()

    def close(self) -> None:
        pass
