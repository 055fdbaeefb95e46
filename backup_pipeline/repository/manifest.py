"""The on-disk format of a backup, in one place: the manifest (`s3db.json`, written last: the
commit), its per-resource entries (also what a staged step leaves in `RESOURCE.stage.json`),
the plan of a staged backup (`plan.json`), the failure note (`failure.json`), the lines of
the key index (`RESOURCE.index.jsonl.gz`) and a backup's verification record
(`verifications/ID.json` at the repository root, verifications.py). Typed classes with `load` (from the JSON as stored,
naming the file when it does not fit) and `dump` (back to it); no other module reads these
keys by string.

Keys the code does not know (written by a newer version) are kept in `extra` and written back,
so copying a manifest never loses anything. For callers of the Python API, a Manifest also
reads like the JSON it stores (`m["id"]`, `m["resources"]["users"]["records"]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterator

import orjson

from ..errors import IntegrityError

MANIFEST = "s3db.json"
PLAN = "plan.json"
FAILURE = "failure.json"
FORMAT = "backup_pipeline"
FORMAT_VERSION = 1


def stage_name(resource: str) -> str:
    return f"{resource}.stage.json"


def index_name(resource: str, part: int | None = None) -> str:
    return f"{resource}.index.jsonl.gz" if part is None else f"{resource}.index.{part_tag(part)}.jsonl.gz"


def is_index_file(name: str) -> bool:
    """A key index (whole resource or one part): `R.index.jsonl.gz`, `R.index.part-NNN.jsonl.gz`."""
    return name.endswith(".index.jsonl.gz") or (".index.part-" in name and name.endswith(".jsonl.gz"))


# A sharded resource (engine/shards.py) is stored as key-range parts: RESOURCE.part-NNN.jsonl.<ext>
# (what a glob `*/RESOURCE.part-*.jsonl.gz` matches: data only), its key index
# RESOURCE.index.part-NNN.jsonl.gz, and while staged RESOURCE.part-NNN.stage.json; the key
# ranges every step of a staged backup shares are RESOURCE.shards.json.
def part_tag(part: int) -> str:
    return f"part-{part:03d}"


def part_stage_name(resource: str, part: int) -> str:
    return f"{resource}.{part_tag(part)}.stage.json"


def shards_name(resource: str) -> str:
    return f"{resource}.shards.json"


INDEX_COMPRESSION = "gzip"


class _JsonView:
    """Read access by the stored JSON's keys, for API callers and notebooks (the package itself
    uses the attributes)."""

    def dump(self) -> dict:
        raise NotImplementedError

    def __getitem__(self, key: str):
        return self.dump()[key]

    def get(self, key: str, default=None):
        return self.dump().get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.dump()

    def keys(self):
        return self.dump().keys()


def _require(data: Any, where: str, what: str, *keys: str) -> dict:
    if not isinstance(data, dict):
        raise IntegrityError(f"{where}: {what} is not a JSON object")
    missing = [k for k in keys if k not in data]
    if missing:
        raise IntegrityError(f"{where}: {what} lacks {', '.join(missing)}")
    return data


@dataclass
class FileEntry(_JsonView):
    """One stored file as recorded: its name, how it is compressed, and what was written."""

    file: str
    compression: str
    lines: int
    bytes: int
    sha256: str

    @classmethod
    def load(cls, data: dict, where: str = "") -> "FileEntry":
        _require(data, where, "a file entry", "file", "compression", "lines", "bytes", "sha256")
        return cls(data["file"], data["compression"], int(data["lines"]), int(data["bytes"]), data["sha256"])

    def dump(self) -> dict:
        return {"file": self.file, "compression": self.compression, "lines": self.lines, "bytes": self.bytes,
                "sha256": self.sha256}


@dataclass
class IndexFile(FileEntry):
    """The key index of a resource: one [key, change token, content hash] line per live object."""

    entries: int = 0

    @classmethod
    def load(cls, data: dict, where: str = "") -> "IndexFile":
        base = FileEntry.load(data, where)
        return cls(**base.__dict__, entries=int(data.get("entries", base.lines)))

    def dump(self) -> dict:
        return {**super().dump(), "entries": self.entries}


@dataclass
class ParquetMirror(_JsonView):
    file: str
    rows: int
    bytes: int
    sha256: str
    row_groups: int = 0
    coerced_nulls: int = 0
    coerced_columns: dict = field(default_factory=dict)
    compression: str = "zstd"  # of the Parquet pages; the stored file itself is as written

    @classmethod
    def load(cls, data: dict, where: str = "") -> "ParquetMirror":
        _require(data, where, "a Parquet mirror entry", "file", "rows", "bytes", "sha256")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def dump(self) -> dict:
        return dict(self.__dict__)

    def as_file(self) -> FileEntry:
        """As a stored file: `lines` are its rows, its format "parquet"."""
        return FileEntry(self.file, "parquet", self.rows, self.bytes, self.sha256)


@dataclass(frozen=True)
class KeyRange(_JsonView):
    """The keys of one part of a sharded resource: after < key <= upto (None: unbounded)."""

    part: int
    after: str | None = None
    upto: str | None = None

    @classmethod
    def load(cls, data: dict, where: str = "") -> "KeyRange":
        _require(data, where, "a key range", "part")
        return cls(int(data["part"]), data.get("after"), data.get("upto"))

    def dump(self) -> dict:
        return {"part": self.part, "after": self.after, "upto": self.upto}

    def __contains__(self, key: str) -> bool:
        return (self.after is None or key > self.after) and (self.upto is None or key <= self.upto)


@dataclass
class ShardPlan(_JsonView):
    """RESOURCE.shards.json of a staged backup: the key ranges every part's step backs up."""

    shard_records: int
    ranges: list[KeyRange]

    @classmethod
    def load(cls, data: dict, where: str = "") -> "ShardPlan":
        _require(data, where, "the shard plan", "shard_records", "ranges")
        return cls(int(data["shard_records"]), [KeyRange.load(r, where) for r in data["ranges"]])

    def dump(self) -> dict:
        return {"shard_records": self.shard_records, "ranges": [r.dump() for r in self.ranges]}


@dataclass
class ResourceEntry(_JsonView):
    """What a backup holds of one resource (the manifest's resources[NAME], a stage file).

    A sharded resource has no file of its own: its `parts` (each a ResourceEntry with its
    `key_range`), in key order, hold its files; its counts are their sums."""

    data: FileEntry | None  # RESOURCE.jsonl.<ext>: records and tombstones (None when sharded)
    index: IndexFile | None
    records: int = 0
    tombstones: int = 0
    snapshot: bool = True  # the resource's whole state (a full, or new since the parent)
    unchanged: int = 0
    fetched: int = 0
    listed_at: str = ""
    seconds: float = 0.0
    parquet: ParquetMirror | None = None
    skipped_corrupt: list[dict] = field(default_factory=list)
    parts: list["ResourceEntry"] = field(default_factory=list)
    key_range: KeyRange | None = None  # of a part
    shard_records: int | None = None  # of a sharded resource: the setting its ranges were cut for
    extra: dict = field(default_factory=dict)

    _KNOWN = ("file", "compression", "lines", "bytes", "sha256", "index", "records", "tombstones", "snapshot",
              "unchanged", "fetched", "listed_at", "seconds", "parquet", "skipped_corrupt", "parts", "range",
              "shard_records")

    @classmethod
    def load(cls, data: dict, where: str = "") -> "ResourceEntry":
        _require(data, where, "a resource entry", "records", "tombstones")
        parts = data.get("parts") or []
        if not isinstance(parts, list):
            raise IntegrityError(f"{where}: the resource's parts are not a JSON list")
        return cls(
            data=None if parts else FileEntry.load(data, where),
            index=IndexFile.load(data["index"], where) if data.get("index") else None,
            records=int(data["records"]), tombstones=int(data["tombstones"]),
            snapshot=bool(data.get("snapshot", True)), unchanged=int(data.get("unchanged") or 0),
            fetched=int(data.get("fetched") or 0), listed_at=data.get("listed_at") or "",
            seconds=float(data.get("seconds") or 0.0),
            parquet=ParquetMirror.load(data["parquet"], where) if data.get("parquet") else None,
            skipped_corrupt=list(data.get("skipped_corrupt") or []),
            parts=[cls.load(p, f"{where} part {n}") for n, p in enumerate(parts)],
            key_range=KeyRange.load(data["range"], where) if data.get("range") else None,
            shard_records=data.get("shard_records"),
            extra={k: v for k, v in data.items() if k not in cls._KNOWN},
        )

    def dump(self) -> dict:
        out = {"records": self.records, "tombstones": self.tombstones, "snapshot": self.snapshot,
               "unchanged": self.unchanged, "fetched": self.fetched, **(self.data.dump() if self.data else {}),
               "index": self.index.dump() if self.index else None, "listed_at": self.listed_at,
               "seconds": round(self.seconds, 3)}
        if self.key_range is not None:
            out["range"] = self.key_range.dump()
        if self.parts:
            out["shard_records"] = self.shard_records
            out["parts"] = [p.dump() for p in self.parts]
        if self.skipped_corrupt:
            out["skipped_corrupt"] = self.skipped_corrupt
        if self.parquet:
            out["parquet"] = self.parquet.dump()
        return {**self.extra, **out}

    @classmethod
    def joined(cls, parts: list["ResourceEntry"], shard_records: int | None) -> "ResourceEntry":
        """A sharded resource's entry from its parts (in key order)."""
        parts = sorted(parts, key=lambda p: p.key_range.part)
        return cls(data=None, index=None, records=sum(p.records for p in parts),
                   tombstones=sum(p.tombstones for p in parts), snapshot=all(p.snapshot for p in parts),
                   unchanged=sum(p.unchanged for p in parts), fetched=sum(p.fetched for p in parts),
                   listed_at=min(p.listed_at for p in parts), seconds=sum(p.seconds for p in parts),
                   skipped_corrupt=[s for p in parts for s in p.skipped_corrupt], parts=parts,
                   shard_records=shard_records)

    @property
    def sharded(self) -> bool:
        return bool(self.parts)

    def pieces(self) -> list["ResourceEntry"]:
        """The entries holding files, in key order: the parts of a sharded resource, else itself."""
        return self.parts or [self]

    def data_files(self) -> list[FileEntry]:
        """The resource's data files in key order (one unless sharded)."""
        return [p.data for p in self.pieces()]

    @property
    def index_entries(self) -> int | None:
        """Live objects as the key index(es) count them; None when a piece has no index."""
        pieces = self.pieces()
        if any(p.index is None for p in pieces):
            return None
        return sum(p.index.entries for p in pieces)

    @property
    def data_bytes(self) -> int:
        return sum(f.bytes for f in self.data_files())

    @property
    def stored_bytes(self) -> int:
        return sum(f.bytes for f in self.files())

    def files(self) -> Iterator[FileEntry]:
        """Every stored file of the resource: data, key index (of each part), Parquet mirror."""
        for piece in self.pieces():
            yield piece.data
            if piece.index:
                yield piece.index
        if self.parquet:
            yield self.parquet.as_file()


@dataclass
class Totals(_JsonView):
    records: int = 0
    tombstones: int = 0
    bytes: int = 0

    def dump(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Manifest(_JsonView):
    """A committed backup."""

    id: str
    type: str  # full | incremental (a synthetic full is a full: see synthetic_from)
    started_at: str
    database: dict  # the source's s3db.json at backup time
    resources: dict[str, ResourceEntry]
    parent: str | None = None
    chain: list[str] = field(default_factory=list)  # oldest first, ending with this backup
    selective: bool = False
    selection: dict = field(default_factory=dict)
    source_url: str | None = None
    finished_at: str | None = None
    compression: str = "gzip"
    secrets_decrypted: bool = False
    sequences: dict = field(default_factory=dict)  # resource -> raw sequence objects
    totals: Totals = field(default_factory=Totals)
    verified: bool = False
    encryption: dict | None = None  # the repository's crypto config, when encrypted
    destinations: dict | None = None  # multi repositories: what each destination got
    partition: str | None = None  # staged (Dagster) backups: the day
    created_at: str | None = None
    # a synthetic full (type "full", built in the repository from the chain of the backup named
    # here, the source not read): that backup's id. Absent from manifests written before it existed.
    synthetic_from: str | None = None
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    _KEYS = {"id": "id", "type": "type", "startedAt": "started_at", "database": "database", "parent": "parent",
             "chain": "chain", "selective": "selective", "selection": "selection", "finishedAt": "finished_at",
             "compression": "compression", "secretsDecrypted": "secrets_decrypted", "sequences": "sequences",
             "verified": "verified", "encryption": "encryption", "destinations": "destinations",
             "partition": "partition", "createdAt": "created_at", "syntheticFrom": "synthetic_from",
             "formatVersion": "format_version"}

    @classmethod
    def load(cls, data: dict, where: str = MANIFEST) -> "Manifest":
        _require(data, where, "the manifest", "id", "type", "startedAt", "database", "resources")
        version = data.get("formatVersion", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise IntegrityError(f"{where}: manifest format version {version!r} is unknown (this version of "
                                 f"backup_pipeline reads up to {FORMAT_VERSION}); read it with a newer one")
        resources = data["resources"]
        if not isinstance(resources, dict):
            raise IntegrityError(f"{where}: the manifest's resources are not a JSON object")
        defined = (data["database"] or {}).get("resources", {}) if isinstance(data["database"], dict) else {}
        undefined = [name for name in resources if name not in defined]
        if undefined:
            raise IntegrityError(f"{where}: resource(s) {', '.join(map(repr, undefined))} of the manifest are missing "
                                 "from its s3db.json snapshot (\"database\"); the manifest is damaged")
        values = {attr: data[key] for key, attr in cls._KEYS.items() if key in data}
        values["chain"] = list(data.get("chain") or [data["id"]])
        values["selection"] = data.get("selection") or {}
        values["sequences"] = data.get("sequences") or {}
        totals = data.get("totals") or {}
        known = set(cls._KEYS) | {"format", "source", "resources", "totals"}
        return cls(
            **values,
            resources={name: ResourceEntry.load(entry, f"{where}: resource {name!r}")
                       for name, entry in resources.items()},
            source_url=(data.get("source") or {}).get("url"),
            totals=Totals(int(totals.get("records", 0)), int(totals.get("tombstones", 0)), int(totals.get("bytes", 0))),
            extra={k: v for k, v in data.items() if k not in known},
        )

    @classmethod
    def parse(cls, raw: bytes, where: str) -> "Manifest":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise IntegrityError(f"{where}: manifest is not valid JSON ({exc})") from None
        return cls.load(data, where)

    def dump(self) -> dict:
        out = {
            "format": FORMAT, "formatVersion": self.format_version, "id": self.id, "type": self.type,
            "parent": self.parent, "chain": self.chain, "selective": self.selective, "selection": self.selection,
            "source": {"url": self.source_url}, "startedAt": self.started_at, "finishedAt": self.finished_at,
            "compression": self.compression, "secretsDecrypted": self.secrets_decrypted, "database": self.database,
            "sequences": self.sequences, "resources": {name: e.dump() for name, e in self.resources.items()},
            "totals": self.totals.dump(),
        }
        for key, attr in (("verified", "verified"), ("encryption", "encryption"), ("destinations", "destinations"),
                          ("partition", "partition"), ("createdAt", "created_at"),
                          ("syntheticFrom", "synthetic_from")):
            value = getattr(self, attr)
            if value not in (None, False):
                out[key] = value
        return {**self.extra, **out}

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.dump(), option=orjson.OPT_INDENT_2)

    def files(self) -> Iterator[tuple[str, FileEntry]]:
        """(resource, stored file) for every file the backup holds besides the manifest."""
        for name, entry in self.resources.items():
            for f in entry.files():
                yield name, f

    def resource_definition(self, resource: str) -> dict:
        """The resource's entry of the s3db.json snapshot (versions, partitions, ...)."""
        return self.database["resources"][resource]


@dataclass
class Plan(_JsonView):
    """plan.json of a staged backup: what every step of the day's backup agrees on."""

    id: str
    type: str
    parent: str | None
    day: str
    started_at: str
    created_at: str
    source: str
    database: dict
    compression: str = "gzip"

    @classmethod
    def load(cls, data: dict, where: str = PLAN) -> "Plan":
        _require(data, where, "the plan", "id", "type", "day", "startedAt", "source", "database")
        return cls(data["id"], data["type"], data.get("parent"), data["day"], data["startedAt"],
                   data.get("createdAt") or "", data["source"], data["database"], data.get("compression", "gzip"))

    def dump(self) -> dict:
        return {"id": self.id, "type": self.type, "parent": self.parent, "day": self.day, "startedAt": self.started_at,
                "createdAt": self.created_at, "source": self.source, "database": self.database,
                "compression": self.compression}


@dataclass
class Failure(_JsonView):
    """failure.json: why a backup stopped (it has no manifest)."""

    error: str
    type: str
    at: str

    @classmethod
    def load(cls, data: dict, where: str = FAILURE) -> "Failure":
        _require(data, where, "the failure note", "error")
        return cls(str(data["error"]), str(data.get("type", "")), str(data.get("at", "")))

    def dump(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Verification(_JsonView):
    """verifications/ID.json: the last verification of a committed backup (`verify`'s memory)."""

    backup_id: str
    verified_at: str  # when it started, ISO 8601 UTC
    outcome: str  # ok | failed
    error: str | None = None  # what differs, when failed
    bytes: int | None = None  # stored bytes read (the backup's files), when ok
    seconds: float = 0.0
    content_checked: bool = True  # False: encrypted and verified without the key (sha256 only)

    @classmethod
    def load(cls, data: dict, where: str) -> "Verification":
        _require(data, where, "the verification record", "id", "verifiedAt", "outcome")
        return cls(str(data["id"]), str(data["verifiedAt"]), str(data["outcome"]), data.get("error"),
                   data.get("bytes"), float(data.get("seconds") or 0), bool(data.get("contentChecked", True)))

    def dump(self) -> dict:
        return {"id": self.backup_id, "verifiedAt": self.verified_at, "outcome": self.outcome, "error": self.error,
                "bytes": self.bytes, "seconds": self.seconds, "contentChecked": self.content_checked}


# The manifest's JSON as DuckDB reads it in place (the `backups` view of query/duckdb_views.py).
DUCKDB_COLUMNS = (
    "{'id': 'VARCHAR', 'type': 'VARCHAR', 'parent': 'VARCHAR', 'chain': 'VARCHAR[]', "
    "'source': 'STRUCT(url VARCHAR)', 'startedAt': 'TIMESTAMPTZ', 'finishedAt': 'TIMESTAMPTZ', "
    "'compression': 'VARCHAR', 'selective': 'BOOLEAN', "
    "'totals': 'STRUCT(records BIGINT, tombstones BIGINT, bytes BIGINT)', "
    "'resources': 'MAP(VARCHAR, STRUCT(records BIGINT, tombstones BIGINT, unchanged BIGINT, fetched BIGINT, "
    "snapshot BOOLEAN, file VARCHAR, compression VARCHAR, lines BIGINT, bytes BIGINT, "
    "parquet STRUCT(file VARCHAR, \"rows\" BIGINT, bytes BIGINT), "
    "parts STRUCT(file VARCHAR, compression VARCHAR, lines BIGINT, bytes BIGINT)[]))'}"
)


# -- the key index: one [key, change token, content hash] line per live object ----------------
def index_line(key: str, version: str, digest: str) -> bytes:
    """What the next incremental diffs its listing against."""
    return orjson.dumps([key, version, digest], option=orjson.OPT_APPEND_NEWLINE)


def parse_index_line(line: bytes, where: str, n: int) -> tuple[str, str, str]:
    try:
        key, token, digest = orjson.loads(line)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        raise IntegrityError(f"{where}: line {n} is not an index entry") from None
    return key, token, digest
