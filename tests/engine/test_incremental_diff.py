"""An incremental diffs its listing against the parent's key index in listing order. The
backup it writes must not depend on the order the store lists in (only its cost may): here
the same filesystem database is listed in orders chosen by the test, with windows small
enough that the out-of-order paths (spilled parent entries, pending objects, a window stuck
on deletions) all run."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from backup_pipeline import Backups
from backup_pipeline.engine import keyindex
from backup_pipeline.errors import IntegrityError
from backup_pipeline.store import RawObject
from backup_pipeline.store.filesystem import FilesystemStore

from helpers import item_objects, make_items_db

ORDERS = {
    # stable under inserts and deletes, unrelated to key order: what an ext4 directory does
    "hashed": (lambda key: hashlib.sha1(key.encode()).digest(), False),
    "sorted": (lambda key: key, True),  # S3
    "sorted-without-hint": (lambda key: key, False),
    "reversed-with-wrong-hint": (lambda key: tuple(-ord(c) for c in key), True),
    "shuffled": (None, False),  # a new order at every listing
}
STABLE = {"hashed", "sorted", "sorted-without-hint"}


class ReorderedStore(FilesystemStore):
    """A real filesystem database whose data listings come in the order the test chooses."""

    def __init__(self, path: Path, order: str, seed: int):
        super().__init__(path)
        self._sort_key, self.listing_sorted = ORDERS[order]
        self._rng = random.Random(seed)
        self.last_listing: list[str] = []

    def _ordered(self, items: list, key_of) -> list:
        if self._sort_key is None:
            self._rng.shuffle(items)
        else:
            items.sort(key=lambda item: self._sort_key(key_of(item)))
        self.last_listing = [key_of(item) for item in items]
        return items

    def list_data_keys(self, resource: str, after: str | None = None):
        return iter(self._ordered(list(super().list_data_keys(resource)), lambda k: k))

    def list_data_versions(self, resource: str, expected: int | None = None, after: str | None = None):
        return iter(self._ordered(list(super().list_data_versions(resource)), lambda item: item[0]))


def _age_all_files(path: Path) -> None:
    # a database at rest: objects written within 2 s of a listing are re-fetched as suspects
    old = time.time() - 3600
    for folder, _, files in os.walk(path):
        for name in files:
            os.utime(os.path.join(folder, name), (old, old))


def _lines(path: Path) -> list:
    with gzip.open(path) as f:
        return [orjson.loads(line) for line in f]


def _run(tmp: Path, order: str, seed: int, count: int, updated: set, deleted: set, inserted: int, window: int,
         stuck_after: int = 2):
    make_items_db(tmp / "db", count)
    _age_all_files(tmp / "db")
    store = ReorderedStore(tmp / "db", order, seed)
    backups = Backups(store, str(tmp / "repo"))
    backups.backup("full", verify=False)

    for i in sorted(updated - deleted):
        obj = next(item_objects(i, i + 1))
        obj.metadata["0"] = f"changed {i}"
        store.put(obj)
    for i in sorted(deleted):
        store.delete(f"resource=items/data/id=item{i:07d}")
    store.put_many(o for o in item_objects(count, count + inserted) if "/data/" in o.key)

    saved = keyindex.WINDOW, keyindex.STUCK_AFTER
    keyindex.WINDOW, keyindex.STUCK_AFTER = window, stuck_after
    try:
        inc = backups.backup("incremental", verify=False)
    finally:
        keyindex.WINDOW, keyindex.STUCK_AFTER = saved
    return store, inc


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.sampled_from(sorted(ORDERS)),
    seed=st.integers(0, 2**16),
    count=st.integers(0, 40),
    changes=st.data(),
    window=st.sampled_from([1, 3, 8192]),
    stuck_after=st.sampled_from([2, 64]),
)
def test_incremental_is_the_same_whatever_the_listing_order(order, seed, count, changes, window, stuck_after):
    ids = list(range(count))
    updated = set(changes.draw(st.lists(st.sampled_from(ids), unique=True) if ids else st.just([])))
    deleted = set(changes.draw(st.lists(st.sampled_from(ids), unique=True) if ids else st.just([])))
    inserted = changes.draw(st.integers(0, 10))
    with tempfile.TemporaryDirectory() as tmp:
        store, inc = _run(Path(tmp), order, seed, count, updated, deleted, inserted, window, stuck_after)
        entry = inc["resources"]["items"]
        folder = Path(tmp) / "repo" / inc["id"]
        lines = _lines(folder / entry["file"])

        key = lambda i: f"resource=items/data/id=item{i:07d}"  # noqa: E731
        changed = {key(i) for i in updated - deleted} | {key(i) for i in range(count, count + inserted)}
        assert {line["_s3db"]["key"] for line in lines if not line.get("_deleted")} == changed
        assert {line["_s3db"]["key"] for line in lines if line.get("_deleted")} == {key(i) for i in deleted}
        assert (entry["records"], entry["tombstones"]) == (len(changed), len(deleted))
        assert entry["unchanged"] == count - len(deleted | updated)

        # the new index: every live object once, with the token of this listing, in its order
        index = _lines(folder / entry["index"]["file"])
        if order != "shuffled":
            assert [k for k, _, _ in index] == store.last_listing
        assert {k: t for k, t, _ in index} == {k: t for k, t, _ in store.list_data_versions("items")}
        if order in STABLE and window > len(deleted) and stuck_after > inserted:
            # in order, with no run of deletions longer than the window and no run of new keys
            # long enough to look like one: nothing fetched that did not change
            assert entry["fetched"] == len(changed)


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_chain_of_incrementals_restores_the_source(tmp_path, order):
    """Three incrementals in a row in each order, with a tiny window: restoring the last one
    gives the source's data objects exactly."""
    make_items_db(tmp_path / "db", 30)
    _age_all_files(tmp_path / "db")
    store = ReorderedStore(tmp_path / "db", order, seed=1)
    backups = Backups(store, str(tmp_path / "repo"))
    backups.backup("full", verify=False)
    saved = keyindex.WINDOW, keyindex.STUCK_AFTER
    keyindex.WINDOW, keyindex.STUCK_AFTER = 2, 2
    try:
        for round_ in range(3):
            for i in range(round_, 30, 4):
                store.delete(f"resource=items/data/id=item{i:07d}")
            for i in range(round_ + 1, 30, 5):
                obj = next(item_objects(i, i + 1))
                obj.metadata["0"] = f"round {round_}"
                store.put(obj)
            store.put_many(o for o in item_objects(100 + 3 * round_, 103 + 3 * round_) if "/data/" in o.key)
            last = backups.backup("incremental")
    finally:
        keyindex.WINDOW, keyindex.STUCK_AFTER = saved
    target = FilesystemStore(tmp_path / "restored", create=True)
    backups.restore(last["id"], target)
    source = {k: store.get(k) for k, _, _ in store.list_data_versions("items")}
    restored = {k: target.get(k) for k, _, _ in target.list_data_versions("items")}
    assert restored.keys() == source.keys()
    assert all(restored[k].metadata == source[k].metadata for k in source)


def test_a_damaged_parent_index_fails_the_incremental_naming_file_and_line(tmp_path):
    make_items_db(tmp_path / "db", 10)
    backups = Backups(FilesystemStore(tmp_path / "db"), str(tmp_path / "repo"))
    full = backups.backup("full")
    index_file = tmp_path / "repo" / full["id"] / full["resources"]["items"]["index"]["file"]
    lines = gzip.decompress(index_file.read_bytes()).splitlines(keepends=True)
    lines[1] = b'{"not": "an index entry"}\n'
    index_file.write_bytes(gzip.compress(b"".join(lines)))
    with pytest.raises(IntegrityError, match=r"items\.index\.jsonl\.gz: line 2 is not an index entry"):
        backups.backup("incremental")
    assert [b.id for b in backups.list() if b.state == "complete"] == [full["id"]]  # nothing else committed
