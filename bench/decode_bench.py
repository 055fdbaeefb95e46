"""Record decoder benchmark: records/s and µs per record of `decode_record` in clean and exact
modes, on realistic records (the engine benchmark's `people` resource, encoded with
`format.encode.encode_record`) and on the 27 fixture records of the filesystem layout; then
what a backup does per record (`decode_one`: decode, the typed-field checks, the JSON line) next
to the same without them (engine/lines.py `_misfit`, `_extra`), so their cost is in view.

    uv run python bench/decode_bench.py [--records 20000] [--repeat 3] [--profile clean|exact]

Each figure is the best of --repeat runs over the same list of objects (decoding is pure,
so repeated runs measure the same work), in CPU time. Secrets are decrypted (the fixtures
have some; PBKDF2 keys are cached after the warm-up). --profile prints the top of a cProfile
(SORT=cumtime to change the order) instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "format"))

from engine_bench import ATTRIBUTES, _mapping, database_json, make_record  # noqa: E402

from backup_pipeline.format import ResourceSchema, decode_record  # noqa: E402
from backup_pipeline.format.encode import encode_record  # noqa: E402
from backup_pipeline.format.raw import RawObject  # noqa: E402
from backup_pipeline.engine.lines import record_line  # noqa: E402

PASSPHRASE = "fixture-passphrase-2024"


def people(count: int) -> list[tuple[ResourceSchema, RawObject]]:
    schema = ResourceSchema.from_database_json("people", database_json())
    rng = random.Random(42)
    mapping = _mapping()
    modified = datetime(2026, 11, 24, tzinfo=timezone.utc)
    return [
        (schema, RawObject(
            key=f"resource=people/data/id=p{i:07d}",
            metadata=encode_record(ATTRIBUTES, mapping, "v1", make_record(i, rng)),
            content_type="application/octet-stream", body=b"", etag=f'"{i:032x}"',
            last_modified=modified + timedelta(seconds=i),
        ))
        for i in range(count)
    ]


def fixtures(count: int) -> list[tuple[ResourceSchema, RawObject]]:
    """The fs-db fixture records, cycled up to `count` objects."""
    from decoder_fixtures import data_objects, schema_for

    base = [(schema_for("fs", resource), obj) for resource, _, obj in data_objects("fs")]
    return [base[i % len(base)] for i in range(count)]


def run(items: list, mode: str) -> float:
    """CPU seconds (decoding is single-threaded CPU work; wall time on a shared box is not)."""
    t0 = time.process_time()
    for schema, obj in items:
        decode_record(schema, obj, passphrase=PASSPHRASE, mode=mode)
    return time.process_time() - t0


def run_lines(items: list, typed: bool) -> float:
    """CPU seconds of a backup's per-record work: decode, then the line (with or without the
    checks that set aside values not fitting their declared type and undeclared fields)."""
    t0 = time.process_time()
    for schema, obj in items:
        decoded = decode_record(schema, obj, passphrase=PASSPHRASE, mode="clean")
        if typed:
            record_line(decoded, obj, schema.typed_fields, schema.declared_fields)
        else:
            record_line(decoded, obj)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", choices=("clean", "exact"))
    args = ap.parse_args()

    kinds = {"people": people(args.records), "fixtures": fixtures(args.records)}
    gc.collect()
    gc.freeze()  # the prepared objects are not the decoder's garbage: keep collections off them
    if args.profile:
        for kind, items in kinds.items():
            print(f"== {kind}, {args.profile} mode")
            run(items[:200], args.profile)  # warm-up, as below
            prof = cProfile.Profile()
            prof.runcall(run, items, args.profile)
            pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(15)
        return

    for kind, items in kinds.items():
        for mode in ("clean", "exact"):
            run(items[:200], mode)  # warm-up (PBKDF2 key cache for the fixtures' secrets, …)
            best = min(run(items, mode) for _ in range(args.repeat))
            print(f"{kind:9s} {mode:5s} {len(items):6d} records  {len(items) / best:9,.0f} records/s"
                  f"  {best / len(items) * 1e6:7.1f} µs/record")
    for kind, items in kinds.items():
        times = {}
        for typed in (False, True):
            run_lines(items[:200], typed)
            times[typed] = min(run_lines(items, typed) for _ in range(args.repeat)) / len(items) * 1e6
        print(f"{kind:9s} line  {len(items):6d} records  {times[True]:7.1f} µs/record with the typed-field check, "
              f"{times[False]:7.1f} without: +{times[True] - times[False]:.1f} µs "
              f"({(times[True] / times[False] - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
