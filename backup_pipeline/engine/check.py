"""A whole-repository check (restic's check): every committed backup's structure without reading
its data (its manifest loads, its chain is committed, every file it records is there at its
recorded size), and the content of a subset of the files with `read_data_subset`:
  "n/t"  the n-th of t parts, chosen by the files' recorded sha256 (running 1/t .. t/t reads
         every file once, whatever ran in between);
  "x%"   a random x percent of the files, different on every run.
Reading a file checks what `verify` checks of it (sha256, bytes, lines, records parse)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable

from ..errors import BackupPipelineError, UsageError
from ..repository import Repository
from ..repository.manifest import FileEntry
from .progress import Progress
from .tables import tables_state
from .verify import verify_file


@dataclass
class CheckReport:
    repository: str
    subset: str | None = None
    backups: int = 0  # committed
    unfinished: list[str] = field(default_factory=list)  # no manifest: never restored (cleanup removes them)
    files: int = 0
    files_read: int = 0
    bytes_read: int = 0
    problems: list[str] = field(default_factory=list)  # each naming backup and file
    # Athena's table files (tables.py), not the backups: `athena-ddl` mends them
    without_tables: list[str] = field(default_factory=list)  # committed, Athena does not see them
    stale_tables: list[str] = field(default_factory=list)  # no longer committed, Athena still lists them

    def as_json(self) -> dict:
        return {**self.__dict__, "ok": not self.problems}


def subset_chooser(text: str | None) -> Callable[[FileEntry], bool]:
    if text is None:
        return lambda _f: False
    part = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if part:
        n, t = int(part.group(1)), int(part.group(2))
        if not 1 <= n <= t:
            raise UsageError(f"--read-data-subset {text!r}: n/t needs 1 <= n <= t (e.g. 1/5 .. 5/5)")
        return lambda f: int(f.sha256[:8] or "0", 16) % t == n - 1
    percent = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", text)
    if percent and 0 < float(percent.group(1)) <= 100:
        share = float(percent.group(1)) / 100
        return lambda _f: random.random() < share
    raise UsageError(f"--read-data-subset {text!r}: give n/t (e.g. 2/5) or a percentage (e.g. 10%)")


def check_repository(repo: Repository, read_data_subset: str | None = None,
                     progress: Progress | None = None) -> CheckReport:
    chosen = subset_chooser(read_data_subset)
    progress = progress or Progress()
    report = CheckReport(repo.url, read_data_subset)
    manifests = {}
    for bid in repo.backup_ids():
        try:
            manifest = repo.read_manifest(bid)
        except BackupPipelineError as exc:
            report.problems.append(f"backup {bid}: manifest unreadable: {exc}")
            continue
        if manifest is None:
            report.unfinished.append(bid)
        else:
            manifests[bid] = manifest
    report.backups = len(manifests)
    progress.start("check", sum(len(list(m.files())) for m in manifests.values()))
    for bid, manifest in sorted(manifests.items()):
        missing = [p for p in manifest.chain if p not in manifests]
        if missing:
            report.problems.append(f"backup {bid}: its chain needs {', '.join(missing)}, not committed in {repo.url}")
        for _resource, expected in manifest.files():
            report.files += 1
            try:
                size = repo.file_size(bid, expected.file)
                if size != expected.bytes:
                    report.problems.append(f"{repo.describe(bid, expected.file)}: {size:,} bytes, the manifest "
                                           f"records {expected.bytes:,}")
                elif chosen(expected):
                    verify_file(repo, bid, expected)
                    report.files_read += 1
                    report.bytes_read += expected.bytes
            except BackupPipelineError as exc:
                report.problems.append(f"backup {bid}: {exc}")
            progress.advance("check")
    progress.finish("check")
    state = tables_state(repo, list(manifests.values()))
    report.without_tables, report.stale_tables = state.missing, state.stale
    return report
