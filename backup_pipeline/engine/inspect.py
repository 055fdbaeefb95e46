"""Decoded records of a live database, streamed in list order (the `inspect` command).

The oracle check of our decoder: with mode "exact" every record is what a fresh s3db.js
`list()` returns; "clean" gives the intended values where s3db.js double-decodes (SPEC §11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import NotFound
from ..format import ResourceSchema, decode_record
from ..store import Store, check_resource_name


@dataclass(frozen=True)
class ResourceSummary:
    name: str
    records: int
    behavior: str
    version: str
    partitions: int


def select_resources(db_json: dict, wanted: Iterable[str] | None) -> list[str]:
    """The resources to work on, in s3db.json order; unknown names are an error that lists the known ones."""
    known = list(db_json.get("resources", {}))
    for name in known:
        check_resource_name(name)
    if not wanted:
        return known
    wanted = [check_resource_name(w) for w in wanted]
    missing = [w for w in wanted if w not in known]
    if missing:
        raise NotFound(f"resource(s) {', '.join(map(repr, missing))} not in s3db.json; known: {', '.join(known)}")
    return [w for w in known if w in set(wanted)]


def iter_records(
    store: Store,
    resources: Iterable[str] | None = None,
    *,
    passphrase: str | None = None,
    mode: str = "exact",
) -> Iterator[tuple[str, dict]]:
    """(resource, decoded record) for every record, resource by resource, in list order."""
    db_json = store.read_database_json()
    for name in select_resources(db_json, resources):
        schema = ResourceSchema.from_database_json(name, db_json)
        keys = (info.key for info in store.list_data(name))
        for obj in store.get_many(keys):
            yield name, decode_record(schema, obj, passphrase=passphrase, mode=mode)


def summarize(store: Store, resources: Iterable[str] | None = None) -> list[ResourceSummary]:
    db_json = store.read_database_json()
    out = []
    for name in select_resources(db_json, resources):
        entry = db_json["resources"][name]
        version = entry.get("currentVersion", "")
        definition = entry.get("versions", {}).get(version, {})
        out.append(
            ResourceSummary(
                name=name,
                records=sum(1 for _ in store.list_data(name)),
                behavior=definition.get("behavior", "user-managed"),
                version=version,
                partitions=len(entry.get("partitions") or definition.get("partitions") or {}),
            )
        )
    return out
