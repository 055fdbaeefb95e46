"""`verify`'s memory: the last verification of each committed backup, one small JSON per backup
at the repository root, `verifications/BACKUP_ID.json` (format: manifest.py `Verification`).

At the root, beside `locks/`, and not in the backup's folder: a committed backup is never
written to again (its manifest and files stay byte for byte what was committed, and a backup
folder under an immutable policy stays immutable), while this record is replaced at every
verification. Every repository (folder, path template, S3, multi) has root files already, so
the contract needs nothing new. A record is one whole-object put (`replace_root`: a rename on a
filesystem, one PUT on S3): readers see the old record or the new one, never a mix, and two
verifications of the same backup at once leave the later one's record, both being true. A
record that is unreadable counts as never verified (it is rewritten by the next verification).
"""

from __future__ import annotations

import orjson

from ..errors import IntegrityError
from .manifest import Verification

FOLDER = "verifications"


def record_name(backup_id: str) -> str:
    return f"{FOLDER}/{backup_id}.json"


def write_verification(repo, record: Verification) -> None:
    repo.replace_root(record_name(record.backup_id), orjson.dumps(record.dump(), option=orjson.OPT_INDENT_2))


def read_verification(repo, backup_id: str) -> Verification | None:
    data = repo.read_root(record_name(backup_id))
    if data is None:
        return None
    try:
        return Verification.load(orjson.loads(data), record_name(backup_id))
    except (orjson.JSONDecodeError, IntegrityError, TypeError, ValueError):
        return None


def delete_verification(repo, backup_id: str) -> None:
    repo.delete_root(record_name(backup_id))
