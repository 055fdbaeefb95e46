"""Object keys of the s3db.js layout (SPEC §1): names, prefixes, record ids, and the checks that
keep a key inside its root."""

from __future__ import annotations

from ..errors import InvalidResourceName
from .collation import locale_sort_key  # noqa: F401 - the filesystem client's listing order (§1.2, §12)

DATABASE_JSON_KEY = "s3db.json"


def check_resource_name(name: str) -> str:
    """Refuse a resource name that could address anything outside its own folder."""
    if not isinstance(name, str) or not name:
        raise InvalidResourceName(f"resource name {name!r} is empty")
    if "/" in name or "\\" in name or ".." in name or name in (".",) or "\x00" in name:
        raise InvalidResourceName(
            f"resource name {name!r} contains '/', '\\' or '..'; such a name could address "
            "files outside its resource and is refused"
        )
    return name


def resource_prefix(resource: str) -> str:
    return f"resource={check_resource_name(resource)}"


def data_prefix(resource: str) -> str:
    # s3db.js lists "resource=R/data" (no slash); we add the slash so that a resource named
    # "data2"-alike prefix can never leak into another listing.
    return f"{resource_prefix(resource)}/data/"


def partition_prefix(resource: str) -> str:
    return f"{resource_prefix(resource)}/partition="


def sequence_prefix(resource: str) -> str:
    return f"{resource_prefix(resource)}/sequence="


def plugin_prefixes(resource: str | None = None) -> str:
    return f"{resource_prefix(resource)}/plugin=" if resource else "plugin="


def id_from_key(key: str) -> str | None:
    """The id of a data or partition key: the text after 'id=' in the first '/'-segment that
    starts with it (SPEC §1.2); None if there is none. `resource=users/data/id=u1` -> `u1`."""
    # that segment is the key's start or follows the first "/id="
    if key.startswith("id="):
        start = 3
    else:
        start = key.find("/id=") + 4
        if start == 3:
            return None
    end = key.find("/", start)
    return key[start:] if end < 0 else key[start:end]


record_id_from_key = id_from_key  # the decoder's name for it


def data_key(resource: str, record_id: str) -> str:
    return f"resource={resource}/data/id={record_id}"
