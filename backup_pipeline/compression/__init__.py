"""Streaming compression writers and readers: none, gzip (isal, standard gzip), zstd, brotli.

A writer wraps a binary file object and is itself a binary file object (write/close);
a reader wraps a binary file object and yields decompressed bytes. Neither knows records.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Iterator

import brotli
import zstandard
from isal import igzip

from ..errors import UsageError

EXTENSIONS = {"gzip": ".jsonl.gz", "zstd": ".jsonl.zst", "brotli": ".jsonl.br", "none": ".jsonl"}
COMPRESSIONS = tuple(EXTENSIONS)
CHUNK = 1 << 20


def file_name(resource: str, compression: str) -> str:
    return resource + EXTENSIONS[check_compression(compression)]


def check_compression(name: str) -> str:
    if name not in EXTENSIONS:
        raise UsageError(f"unknown compression {name!r}; choose one of {', '.join(COMPRESSIONS)}")
    return name


class _BrotliWriter(io.RawIOBase):
    def __init__(self, raw: BinaryIO, quality: int = 4):
        self._raw, self._c = raw, brotli.Compressor(quality=quality)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._raw.write(self._c.process(bytes(data)))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.write(self._c.finish())
        super().close()


class _NoCloseWriter(io.RawIOBase):
    """Pass-through that leaves the underlying file open (the caller commits it)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._raw.write(data)


def open_writer(raw: BinaryIO, compression: str) -> BinaryIO:
    """A compressing writer over `raw`; closing it finishes the stream but leaves `raw` open."""
    compression = check_compression(compression)
    # Callers write a line at a time: the buffer turns 100-byte writes into 1 MiB ones (a
    # compressor's per-call overhead is ~2 us, more than compressing a line at level 1).
    if compression == "gzip":
        # isal igzip at level 1: ~10x zlib's speed here, output is standard gzip (STACK-NOTES)
        compressor = igzip.IGzipFile(fileobj=raw, mode="wb", compresslevel=1)
    elif compression == "zstd":
        compressor = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
    elif compression == "brotli":
        compressor = _BrotliWriter(raw)
    else:
        compressor = _NoCloseWriter(raw)
    return io.BufferedWriter(compressor, buffer_size=CHUNK)


def iter_decompressed(raw: BinaryIO, compression: str) -> Iterator[bytes]:
    """Decompressed chunks of `raw`; a truncated or corrupt stream raises ValueError/EOFError/OSError."""
    compression = check_compression(compression)
    if compression == "gzip":
        with igzip.IGzipFile(fileobj=raw, mode="rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    elif compression == "zstd":
        d = zstandard.ZstdDecompressor().decompressobj()
        while chunk := raw.read(CHUNK):
            yield d.decompress(chunk)
        if not d.eof:
            raise EOFError("zstd stream ends before its end-of-frame marker (truncated)")
    elif compression == "brotli":
        d = brotli.Decompressor()
        while chunk := raw.read(CHUNK):
            yield d.process(chunk)
        if not d.is_finished():
            raise EOFError("brotli stream ends before its end marker (truncated)")
    else:
        while chunk := raw.read(CHUNK):
            yield chunk


def iter_lines(raw: BinaryIO, compression: str) -> Iterator[bytes]:
    """Lines (without the newline) of a compressed JSONL stream, never more than a chunk in memory."""
    tail = b""
    for chunk in iter_decompressed(raw, compression):
        chunk = tail + chunk
        lines = chunk.split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        raise EOFError("last line has no newline (file truncated)")
