"""The one small protocol every s3db.js store implements (filesystem layout, S3).

Keys are always relative to the database root (the bucket, or bucket/prefix); a store
never exposes its root to callers, so a backup taken from S3 restores into a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Protocol, runtime_checkable

from ..format.raw import RawObject  # noqa: F401 - what a store holds is what the format decodes


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One entry of a listing: what LIST gives without fetching the object."""

    key: str
    etag: str  # with the double quotes, as S3 returns it: '"d41d8cd9..."'
    last_modified: datetime  # timezone-aware UTC
    size: int


@runtime_checkable
class Store(Protocol):
    """What the engine needs from an s3db.js database."""

    url: str  # the connection string it was opened from, credentials masked

    def read_database_json(self) -> dict: ...

    def list_resources(self) -> list[str]: ...

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def list_data(self, resource: str) -> Iterator[ObjectInfo]: ...

    listing_sorted: bool  # True when data listings come in key order (S3); a hint for diffs
    reads_in_workers: bool  # True when get() is CPU work worth spreading over processes (the store pickles)

    def list_data_versions(self, resource: str, expected: int | None = None,
                           after: str | None = None) -> Iterator[tuple[str, str, int]]:
        """(key, change token, last modified in ms) of every data object, as cheaply as the
        store allows, in an order that stays the same from one listing to the next; the same
        token comes back in RawObject.extra["version"] from get(). `expected`: roughly how many
        objects the caller expects (a store may list large folders differently). `after`: the
        caller wants keys after this one only (a part of a sharded resource): a sorted listing
        may start there (S3's start-after); keys up to it may still come, the caller filters."""

    def list_data_keys(self, resource: str, after: str | None = None) -> Iterator[str]:
        """Data keys only (cheaper where a listing must read metadata, as on the filesystem);
        `after` as for list_data_versions."""

    def get(self, key: str) -> RawObject: ...

    def get_many(self, keys: Iterable[str], concurrency: int = 32) -> Iterator[RawObject]: ...

    def put(self, obj: RawObject, create_only: bool = False) -> bool: ...

    def put_many(self, objs: Iterable[RawObject], concurrency: int = 32, fresh: bool = False) -> None:
        """Write them all. `fresh`: the caller knows none exists yet and flags an interrupted
        write itself (a restore's marker), so a store may skip existence checks and atomic
        renames (the filesystem layout does: two file creations per object, nothing else)."""

    def delete(self, key: str) -> None: ...

    def close(self) -> None: ...
