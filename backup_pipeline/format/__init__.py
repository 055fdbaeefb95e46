"""Decoder for records stored by s3db.js 21.6.2 (see /work/shared/s3db-format/SPEC.md).

Pure functions over bytes and dicts, no I/O:

    schema = ResourceSchema.from_database_json("users", db_json)   # parsed s3db.json
    record = decode_record(schema, raw_object, passphrase=None, mode="exact")

`decode_record` returns a JSON-ready dict (to_json_compatible already applied) in the key
order s3db.js's list() prints. Modules: transport (§5 metadata values), numbers (§6.1),
codecs (§6.2-6.4), secrets (§9), schema (§2, §4, §8 hash), record (§7, §8, §11),
partitions (§10), keys (§1.2 ids and listing order).
"""

from .field_codecs import DecodeContext, FieldCodec
from .keys import data_key, locale_sort_key, record_id_from_key
from .partitions import (
    apply_partition_rule,
    partition_prefix,
    partition_query_prefix,
    partition_reference_key,
    partition_reference_keys,
)
from .record import SYSTEM_FIELDS, decode_record, to_json_compatible, unmap
from .schema import ResourceSchema, stable_json
from .transport import decode_metadata, decode_metadata_value

__all__ = [
    "ResourceSchema",
    "decode_record",
    "record_id_from_key",
    "partition_query_prefix",
    "partition_reference_key",
    "partition_reference_keys",
    "partition_prefix",
    "apply_partition_rule",
    "to_json_compatible",
    "locale_sort_key",
    "data_key",
    "decode_metadata",
    "decode_metadata_value",
    "stable_json",
    "unmap",
    "DecodeContext",
    "FieldCodec",
    "SYSTEM_FIELDS",
]
