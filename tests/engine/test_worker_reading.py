"""A filesystem backup's workers read their own batches of objects (engine/decoding.map_keys):
the files they produce are those of reading and decoding in one process, and a corrupt object
read by a worker is named (or recorded with --skip-corrupt) as one read by the main process."""

from __future__ import annotations

import gzip

import pytest

from backup_pipeline import Backups
from backup_pipeline.engine import decoding
from backup_pipeline.engine.progress import Progress
from backup_pipeline.errors import CorruptObject
from helpers import make_items_db

COUNT = 700  # several batches of decoding.BATCH


@pytest.fixture
def through_workers(monkeypatch):
    monkeypatch.setattr(decoding, "INLINE_FIRST", 0)  # no inline start: every batch goes to a worker


def _lines(repo, manifest, name):
    return gzip.open(repo / manifest["id"] / name).read().splitlines()


def test_workers_write_what_one_process_writes(tmp_path, through_workers):
    src = tmp_path / "src"
    make_items_db(src, COUNT)
    files = {}
    for workers in (0, 1):
        repo = tmp_path / f"repo-{workers}"
        with Backups(f"file://{src}", str(repo)) as b:
            m = b.backup("full", workers=workers)
        assert m.resources["items"].records == COUNT
        files[workers] = (_lines(repo, m, "items.jsonl.gz"), _lines(repo, m, "items.index.jsonl.gz"))
    assert len(files[1][0]) == COUNT and files[1] == files[0]  # same lines, same order


def test_a_corrupt_object_read_by_a_worker_is_named_or_skipped(tmp_path, through_workers):
    src = tmp_path / "src"
    make_items_db(src, COUNT)
    bad = src / "resource=items" / "data" / "id=item0000500.meta.json"
    bad.write_text("{not json")
    with Backups(f"file://{src}", str(tmp_path / "repo")) as b:
        seen = Recorder()
        with pytest.raises(CorruptObject, match="id=item0000500.meta.json: sidecar is not valid JSON"):
            b.backup("full", workers=1, progress=seen)
        assert seen.started == ["items"] and seen.finished == []  # a failed resource's bar never reads done
        assert b.list()[-1].state == "failed"
        m = b.backup("full", workers=1, skip_corrupt=True)
    entry = m.resources["items"]
    assert entry.records == COUNT - 1
    assert [s["key"] for s in entry.skipped_corrupt] == ["resource=items/data/id=item0000500"]


class Recorder(Progress):
    def __init__(self):
        self.started, self.finished = [], []

    def start(self, task, total=None):
        self.started.append(task)

    def finish(self, task):
        self.finished.append(task)


SCRIPT = """
import os, sys
with open(os.environ["MARK"], "a") as f:
    f.write(__name__ + "\\n")
if __name__ == "__main__":
    from backup_pipeline import Backups
    from backup_pipeline.engine import decoding
    decoding.INLINE_FIRST = 0
    m = Backups(sys.argv[1], sys.argv[2]).backup("full", workers=1)
    assert m.totals.records == int(sys.argv[3])
"""


def test_workers_do_not_run_the_main_script_again(tmp_path):
    """Under `dagster` (or any script) a spawned worker would import the main script again as
    __mp_main__: the Dagster CLI, a second of imports per worker. Workers skip it."""
    import os
    import subprocess
    import sys

    src = tmp_path / "src"
    make_items_db(src, COUNT)
    script, mark = tmp_path / "main_script.py", tmp_path / "imports"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), f"file://{src}", str(tmp_path / "repo"), str(COUNT)],
                          env={**os.environ, "MARK": str(mark)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert mark.read_text().split() == ["__main__"]  # no "__mp_main__": the worker did not import it
