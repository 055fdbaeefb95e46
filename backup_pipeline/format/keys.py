"""Object keys: record ids (SPEC §1.2) and the filesystem client's listing order (§1.2, §12)."""

from __future__ import annotations

# One implementation each, in the store layer where the key layout lives; re-exported here
# because the decoder and partitions use them too.
from ..store.collation import locale_sort_key  # noqa: F401
from ..store.names import id_from_key as record_id_from_key  # noqa: F401


def data_key(resource: str, record_id: str) -> str:
    return f"resource={resource}/data/id={record_id}"
