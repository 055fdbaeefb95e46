"""Key-range shards: one large resource backed up as parts, each its own step (a Dagster op
the multiprocess, k8s or celery executor runs in its own process or pod).

- A resource whose listing holds more than `shard_records` objects is cut into
  ceil(count / shard_records) ranges of about equal size, cut from one listing (a bounded sample
  of its keys, whatever the count).
- The ranges stay from one backup to the next while the setting does: an incremental diffs each
  part against the same part of its parent, and a full takes them over while they still fit
  (re-cut when the count the setting asks for changed). Changing `shard_records` re-cuts.
- Part N holds the keys after < key <= upto of its range (KeyRange), in RESOURCE.part-NNN files.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator, TypeVar

from ..repository.manifest import KeyRange, ResourceEntry

T = TypeVar("T")

SAMPLE = 4096  # keys kept to cut ranges from: boundaries within count/SAMPLE keys of the exact quantiles
MAX_PARTS = 1000  # RESOURCE.part-NNN


def parts_for(count: int, shard_records: int) -> int:
    return min(MAX_PARTS, max(1, math.ceil(count / shard_records)))


def cut_ranges(keys: Iterable[str], shard_records: int) -> tuple[int, list[KeyRange] | None]:
    """(objects listed, ranges): None when the resource fits one part. Memory holds a sample of
    at most 2 x SAMPLE keys (every k-th listed, k doubling as the listing grows)."""
    sample: list[str] = []
    step, count = 1, 0
    for key in keys:
        if count % step == 0:
            sample.append(key)
            if len(sample) >= 2 * SAMPLE:
                sample, step = sample[::2], step * 2
        count += 1
    parts = parts_for(count, shard_records)
    if parts == 1:
        return count, None
    sample.sort()  # a filesystem lists in directory order
    bounds = sorted({sample[(i * len(sample)) // parts - 1] for i in range(1, parts)})  # the last key of part i-1
    edges = [None, *bounds, None]
    return count, [KeyRange(n, edges[n], edges[n + 1]) for n in range(len(edges) - 1)]


def reusable_ranges(previous: ResourceEntry | None, shard_records: int, full: bool) -> list[KeyRange] | None:
    """The ranges of the newest backup's entry, when they still serve: cut for the same setting,
    and for a full, still the number of parts its live objects ask for."""
    if previous is None or not previous.sharded or previous.shard_records != shard_records:
        return None
    ranges = [p.key_range for p in previous.parts]
    live = previous.index_entries
    if full and live is not None and parts_for(live, shard_records) != len(ranges):
        return None
    return ranges


def within(items: Iterable[T], key_range: KeyRange | None, key_of: Callable[[T], str],
           sorted_listing: bool = False) -> Iterator[T]:
    """The listed items whose key is in the range (all when None); a sorted listing stops at
    the range's end."""
    if key_range is None:
        yield from items
        return
    after, upto = key_range.after, key_range.upto
    for item in items:
        key = key_of(item)
        if after is not None and key <= after:
            continue
        if upto is not None and key > upto:
            if sorted_listing:
                return
            continue
        yield item
