"""Path templates: where a backup's folder sits under a repository root.

A template such as "{date}/{id}" (the s3db.js plugin's "./backups/{date}/") is resolved once
per backup from its id, which carries the type and start time ("full-2026-11-24T020000Z-ab12"),
so any process can find a backup's folder from its id alone; no index is needed. Listing
matches the template with each placeholder as one path segment.
"""

from __future__ import annotations

import re
from datetime import datetime

from ..errors import UsageError

PLACEHOLDERS = ("date", "time", "type", "id")
_ID = re.compile(r"^(?P<type>[a-z]+)-(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{6})Z-[0-9a-f]+$")


def split_template(path: str) -> tuple[str, str]:
    """'./backups/{date}/' -> ('./backups', '{date}/{id}'): root and the layout below it."""
    parts = path.rstrip("/").split("/")
    first = next((i for i, p in enumerate(parts) if "{" in p), len(parts))
    root = "/".join(parts[:first]) or ("/" if path.startswith("/") else ".")
    layout = parts[first:]
    for p in layout:
        for name in re.findall(r"{([^}]*)}", p):
            if name not in PLACEHOLDERS:
                raise UsageError(f"repository path {path!r}: unknown placeholder {{{name}}}; use {', '.join('{' + x + '}' for x in PLACEHOLDERS)}")
    if not layout or "{id}" not in layout[-1]:
        layout.append("{id}")
    return root, "/".join(layout)


def resolve(layout: str, backup_id: str) -> str:
    m = _ID.match(backup_id)
    if m is None:
        if layout == "{id}":
            return backup_id
        raise UsageError(f"backup id {backup_id!r} does not carry a date and type, so the path template "
                         f"{layout!r} cannot place it")
    d = datetime.strptime(m["date"], "%Y-%m-%d")
    return layout.format(id=backup_id, type=m["type"], date=d.strftime("%Y-%m-%d"), time=m["time"])


def backup_id_in(layout: str, folder: str) -> str | None:
    """The backup id whose folder is `folder` (relative to the root), or None when the folder
    is not one the template makes. The id is read from the template's last segment, so a
    Hive-style "backup_id={id}" folder names backup "full-...", not "backup_id=full-..."."""
    last = layout.rsplit("/", 1)[-1]
    pattern = "".join(f"(?P<{m[1]}>[^/]+?)" if m[1] == "id" else "[^/]+?" if m[1] else re.escape(m[2])
                      for m in re.finditer(r"{([a-z]+)}|([^{]+)", last))
    m = re.fullmatch(pattern, folder.rsplit("/", 1)[-1])
    if m is None:
        return None
    try:
        return m["id"] if resolve(layout, m["id"]) == folder else None
    except UsageError:
        return None


def depth(layout: str) -> int:
    return layout.count("/") + 1
