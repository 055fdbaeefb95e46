"""Lists a data folder of the filesystem layout, here or from a separate process.

    python fs_lister.py FOLDER   ->  stdout: NAME \0 TOKEN \0 MTIME_MS \0  per object

One stat per object is most of an incremental backup's time on the filesystem (~4 us of
kernel time each); run as a child process, the stats use a second core while the backup
diffs what has been listed so far. NAME is the object's file name without the sidecar
suffix, as raw bytes (a file name cannot hold NUL). Standalone on purpose: it imports
nothing from the package, so the child starts in ~20 ms; filesystem.py imports it too.
"""

import os
import sys
from typing import Iterator

SIDECAR = ".meta.json"
BATCH = 4096


def is_skipped(name: str) -> bool:
    """Files s3db.js itself ignores: backups, temp files, the journal."""
    return name.endswith(".bak") or ".tmp." in name or name == "operations.journal"


def scan_sidecars(folder: str) -> Iterator[tuple[str, int, int]]:
    """(object name, sidecar mtime in ns, sidecar size) in directory order, one stat each."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return  # no data folder: no objects
    try:
        # scandir over a descriptor: each stat resolves one name relative to the folder
        # instead of the whole path (half the cost)
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(SIDECAR) or is_skipped(name[: -len(SIDECAR)]):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # deleted since the directory was read
                yield name[: -len(SIDECAR)], st.st_mtime_ns, st.st_size
    finally:
        os.close(fd)


def main(folder: str) -> None:
    out = sys.stdout.buffer
    parts: list[bytes] = []
    for name, ns, size in scan_sidecars(folder):
        # the bytes os.fsencode would give (the name as the directory holds it)
        parts.append(b"%s\0fs:%d:%d\0%d\0" % (name.encode("utf-8", "surrogateescape"), ns, size, ns // 1_000_000))
        if len(parts) >= BATCH:
            out.write(b"".join(parts))
            parts.clear()
    out.write(b"".join(parts))
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
