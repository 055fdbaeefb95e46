"""The object a restore keeps in its target while it writes.

A restore writes objects, then partition references, sequences and s3db.json; killed half
way, it leaves a database that looks whole to s3db.js. The marker is written before the
first object and deleted after s3db.json, so an interrupted restore stays visible: a later
restore in safe mode, and a backup of that database, refuse it and say how to finish it.
It lives under plugin=, where s3db.js keeps plugin state and never looks for records.
"""

from __future__ import annotations

import orjson

from ..errors import ConflictError, NotFound
from ..store import RawObject, Store

KEY = "plugin=backup-pipeline/restore-in-progress.json"


def read(store: Store) -> dict | None:
    try:
        return orjson.loads(store.get(KEY).body)
    except NotFound:
        return None
    except orjson.JSONDecodeError:
        return {}  # unreadable, but there all the same


def write(store: Store, backup_id: str, mode: str, resources: list[str], started: str) -> None:
    body = orjson.dumps({"backup": backup_id, "mode": mode, "resources": resources, "started": started})
    store.put(RawObject(key=KEY, metadata={}, content_type="application/json", body=body))


def clear(store: Store) -> None:
    store.delete(KEY)


def unfinished(store: Store, marker: dict, doing: str) -> ConflictError:
    what = f"backup {marker.get('backup', '?')} started {marker.get('started', '?')}"
    return ConflictError(
        f"{store.url} holds an unfinished restore ({what}, resources {', '.join(marker.get('resources') or ['?'])}): "
        f"it was interrupted and its data is partial, so it cannot be {doing}. Redo it with "
        f"`restore {marker.get('backup', 'BACKUP_ID')} --mode replace` (deletes the partial records first), "
        f"or delete the object {KEY} if you know the data is whole"
    )
