"""The record checks of a backup file: the same rules for `verify` (CLI, API) and for the
Dagster asset checks, each failure naming the file and, where there is one, the line.

A scan (`RecordScan`) counts what the checks need; `scan_records` builds it from the lines of
the file (Python, any repository); the Dagster checks may build the same counts with DuckDB
instead. `record_checks` turns a scan into one outcome per check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

from ..repository.manifest import ResourceEntry

CHECKS = {
    "line_count_matches_manifest": "lines in the file = records + tombstones recorded when it was written",
    "ids_unique_and_not_null": "every line has an id, and no id appears twice",
    "sha256_matches_manifest": "sha256 of the stored file = the one recorded when it was written",
    "tombstones_only_in_incrementals": "a full backup (or a resource's snapshot) holds no tombstone lines; an "
                                       "incremental holds the number of tombstones recorded",
    "parquet_mirror_matches": "the Parquet mirror (when written) has the recorded sha256 and one row per line",
}
EXAMPLES = 5  # offending lines named per check


@dataclass
class RecordScan:
    lines: int = 0
    null_ids: int = 0
    duplicate_ids: int = 0
    tombstones: int = 0
    # (line number, id) of the first offenders, when the scan knows lines (the Python scan does)
    null_id_lines: list[int] = field(default_factory=list)
    duplicate_id_lines: list[tuple[int, str]] = field(default_factory=list)
    tombstone_lines: list[tuple[int, str]] = field(default_factory=list)


def scan_records(records: Iterable[tuple[int, dict]]) -> RecordScan:
    """Counts over (line number, record) pairs. Ids are remembered as 8-byte digests, so a
    million records take tens of megabytes, not their ids' size."""
    scan = RecordScan()
    seen: set[int] = set()
    for n, rec in records:
        scan.lines = n
        rid = rec.get("id") if isinstance(rec, dict) else None
        if rid is None:
            scan.null_ids += 1
            if len(scan.null_id_lines) < EXAMPLES:
                scan.null_id_lines.append(n)
        else:
            digest = int.from_bytes(hashlib.blake2b(str(rid).encode(), digest_size=8).digest(), "little")
            if digest in seen:
                scan.duplicate_ids += 1
                if len(scan.duplicate_id_lines) < EXAMPLES:
                    scan.duplicate_id_lines.append((n, str(rid)))
            else:
                seen.add(digest)
        if isinstance(rec, dict) and rec.get("_deleted") is True:
            scan.tombstones += 1
            if len(scan.tombstone_lines) < EXAMPLES:
                scan.tombstone_lines.append((n, str(rid)))
    return scan


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    detail: str  # what was found, naming the file and lines when it fails
    values: dict = field(default_factory=dict)  # the figures behind it (Dagster metadata)


def _lines(items) -> str:
    return ", ".join(f"line {n}" + (f" (id {rid!r})" if rid is not None else "") for n, rid in items)


def record_checks(where: str, entry: ResourceEntry, scan: RecordScan) -> list[CheckOutcome]:
    """The checks of one backup file's records. `entry` is what the manifest (or stage file)
    recorded; a snapshot (the resource's full state) may hold no tombstone."""
    recorded = entry.records + entry.tombstones
    snapshot = entry.snapshot
    file_lines = sum(f.lines for f in entry.data_files())
    out = [CheckOutcome(
        "line_count_matches_manifest", scan.lines == recorded == file_lines,
        f"{where}: {scan.lines} lines; the manifest records {entry.records} records + {entry.tombstones} "
        f"tombstones = {recorded} (and {file_lines} lines)",
        {"lines": scan.lines, "recorded": recorded})]
    problems = []
    if scan.null_ids:
        problems.append(f"{scan.null_ids} line(s) without an id"
                        + (f" ({_lines((n, None) for n in scan.null_id_lines)})" if scan.null_id_lines else ""))
    if scan.duplicate_ids:
        problems.append(f"{scan.duplicate_ids} line(s) repeating an earlier id"
                        + (f" ({_lines(scan.duplicate_id_lines)})" if scan.duplicate_id_lines else ""))
    out.append(CheckOutcome(
        "ids_unique_and_not_null", not problems,
        f"{where}: " + ("; ".join(problems) if problems else f"{scan.lines} ids, unique and not null"),
        {"null_ids": scan.null_ids, "duplicate_ids": scan.duplicate_ids}))
    bad_tombstones = snapshot and scan.tombstones > 0
    # an incremental may hold tombstones: there, its count is checked against the manifest
    miscounted = scan.tombstones != entry.tombstones
    out.append(CheckOutcome(
        "tombstones_only_in_incrementals", not bad_tombstones and not miscounted,
        f"{where}: " + (f"{scan.tombstones} tombstone(s) in a full snapshot"
                        + (f" ({_lines(scan.tombstone_lines)})" if scan.tombstone_lines else "")
                        if bad_tombstones else
                        f"{scan.tombstones} tombstone(s) in {'a full snapshot' if snapshot else 'an incremental'}"
                        + (f"; the manifest records {entry.tombstones}" if miscounted else "")),
        {"tombstones": scan.tombstones, "recorded_tombstones": entry.tombstones, "snapshot": snapshot}))
    return out
