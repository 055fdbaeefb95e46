"""Crypto benchmark: encrypt / decrypt MB/s of our streams, next to a plain copy ceiling.

    uv run python bench/crypto_bench.py [--mb 200] [--chunk-size 1048576] [--piece 1048576]

Data: pseudo-random bytes, written and read in `--piece`-byte pieces. Encrypt: EncryptingWriter
into a BytesIO sink; decrypt: DecryptingReader over a BytesIO of the ciphertext. Ceiling: the
same pieces written to / read from a plain BytesIO (a memcpy-ish upper bound for any stream).
Best of `--repeat` runs; MB = 10**6 bytes. The key is a raw key (no scrypt in the timing).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backup_pipeline.repository.crypto import (  # noqa: E402
    DecryptingReader,
    EncryptingWriter,
    RepositoryKey,
    encrypted_size,
)


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="plaintext size in MB (10**6 bytes)")
    parser.add_argument("--chunk-size", type=int, default=1 << 20)
    parser.add_argument("--piece", type=int, default=1 << 20, help="bytes per write() / read()")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    size = args.mb * 10**6
    data = random.Random(0).randbytes(size)
    view = memoryview(data)
    pieces = [view[i : i + args.piece] for i in range(0, size, args.piece)]
    mb = size / 1e6

    def plain_write():
        sink = io.BytesIO()
        for p in pieces:
            sink.write(p)
        return sink

    def plain_read(src: bytes):
        reader, n = io.BytesIO(src), 0
        while chunk := reader.read(args.piece):
            n += len(chunk)
        return n

    t_cw, _ = best(plain_write, args.repeat)
    t_cr, n = best(lambda: plain_read(data), args.repeat)
    assert n == size
    print(f"{mb:.0f} MB, chunk size {args.chunk_size}, pieces of {args.piece} bytes, "
          f"best of {args.repeat}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'':20} {'encrypt MB/s':>13} {'ceiling':>9} {'ratio':>6}   "
          f"{'decrypt MB/s':>13} {'ceiling':>9} {'ratio':>6}")

    for algorithm in ("aes-256-gcm", "chacha20-poly1305"):
        raw = os.urandom(32)
        key = RepositoryKey.open(RepositoryKey.create_config(raw_key=raw, algorithm=algorithm), raw_key=raw)

        def encrypt():
            sink = io.BytesIO()
            writer = EncryptingWriter(sink, key, chunk_size=args.chunk_size)
            for p in pieces:
                writer.write(p)
            writer.close()
            return sink

        def decrypt(blob: bytes):
            reader, n = DecryptingReader(io.BytesIO(blob), key), 0
            while chunk := reader.read(args.piece):
                n += len(chunk)
            return n

        t_e, sink = best(encrypt, args.repeat)
        blob = sink.getvalue()
        del sink
        assert len(blob) == encrypted_size(size, args.chunk_size)
        t_d, n = best(lambda: decrypt(blob), args.repeat)
        assert n == size
        del blob
        e, ce, d, cd = mb / t_e, mb / t_cw, mb / t_d, mb / t_cr
        print(f"{algorithm:20} {e:13.0f} {ce:9.0f} {e / ce:6.2f}   {d:13.0f} {cd:9.0f} {d / cd:6.2f}")


if __name__ == "__main__":
    main()
