"""Client-side streaming encryption (backup_pipeline.repository.crypto): keys, stream format, tampering."""

from __future__ import annotations

import base64
import gc
import gzip
import hashlib
import io
import json
import os
import random
import tracemalloc

import orjson
import pytest

from backup_pipeline.repository import crypto
from backup_pipeline.repository.crypto import (
    HEADER_SIZE,
    TAG_SIZE,
    BadHeader,
    DecryptingReader,
    EncryptingWriter,
    InvalidCryptoConfig,
    KeyArgumentError,
    NotEncrypted,
    RepositoryKey,
    TamperedChunk,
    TamperedHeader,
    TruncatedFile,
    TruncatedOrTamperedFinalChunk,
    UnsupportedFormat,
    WrongKey,
    encrypted_size,
)
from backup_pipeline.errors import IntegrityError, UsageError

ALGORITHMS = ["aes-256-gcm", "chacha20-poly1305"]
FAST = {"scrypt_n": 2**10, "scrypt_r": 8, "scrypt_p": 1}
CS = 64  # small chunk size for the format tests
NAME = "users/part-0001.jsonl.gz.enc"


@pytest.fixture(scope="module", params=ALGORITHMS)
def repo(request):
    config = RepositoryKey.create_config("correct horse", algorithm=request.param, **FAST)
    return config, RepositoryKey.open(config, passphrase="correct horse")


@pytest.fixture(scope="module")
def key(repo):
    return repo[1]


def encrypt(key, data: bytes, chunk_size: int = CS, piece: int | None = None) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, key, chunk_size=chunk_size)
    if piece is None:
        writer.write(data)
    else:
        for i in range(0, len(data), piece):
            assert writer.write(data[i : i + piece]) == len(data[i : i + piece])
    writer.close()
    assert not sink.closed
    return sink.getvalue()


def decrypt(key, blob: bytes, name: str = NAME) -> bytes:
    return DecryptingReader(io.BytesIO(blob), key, name=name).read()


def chunk_offset(i: int, chunk_size: int = CS) -> int:
    return HEADER_SIZE + i * (chunk_size + TAG_SIZE)


def flip(blob: bytes, at: int) -> bytes:
    b = bytearray(blob)
    b[at] ^= 0x01
    return bytes(b)


# --------------------------------------------------------------------------- round trips

SIZES = [0, 1, CS - 1, CS, CS + 1, 2 * CS, 5 * CS + 7, 1000]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(key, size):
    data = random.Random(size).randbytes(size)
    blob = encrypt(key, data)
    assert len(blob) == encrypted_size(size, CS)
    assert decrypt(key, blob) == data


@pytest.mark.parametrize("piece", [1, 7, CS, CS + 3, 200])
def test_round_trip_in_pieces_and_read_patterns(key, piece):
    data = random.Random(piece).randbytes(7 * CS + 5)
    blob = encrypt(key, data, piece=piece)
    assert blob[HEADER_SIZE:] != encrypt(key, data)[HEADER_SIZE:]  # fresh file id each time
    assert decrypt(key, blob) == data
    # read(n) returns exactly n bytes until EOF
    reader = DecryptingReader(io.BytesIO(blob), key, name=NAME)
    out = []
    while chunk := reader.read(piece):
        assert len(chunk) == piece or len(b"".join(out)) + len(chunk) == len(data)
        out.append(chunk)
    assert b"".join(out) == data
    assert reader.read(10) == b"" and reader.read() == b""
    # readinto, and wrapped in BufferedReader
    reader = DecryptingReader(io.BytesIO(blob), key)
    buf = bytearray(piece)
    got = bytearray()
    while n := reader.readinto(buf):
        got += buf[:n]
    assert bytes(got) == data
    assert io.BufferedReader(DecryptingReader(io.BytesIO(blob), key)).read() == data


def test_encrypted_size():
    for cs in (1, 3, CS, 1 << 20):
        for size in (0, 1, cs - 1, cs, cs + 1, 10 * cs + 1):
            full, rest = divmod(size, cs)
            assert encrypted_size(size, cs) == HEADER_SIZE + full * (cs + TAG_SIZE) + rest + TAG_SIZE
    assert encrypted_size(0) == HEADER_SIZE + TAG_SIZE


def test_chunk_size_one_and_default(key):
    data = os.urandom(300)
    assert decrypt(key, encrypt(key, data, chunk_size=1)) == data
    big = os.urandom((1 << 20) * 2 + 3)
    blob = encrypt(key, big, chunk_size=1 << 20)
    assert len(blob) == encrypted_size(len(big))
    assert decrypt(key, blob) == big


def test_gzip_jsonl_through_the_streams(key):
    lines = [orjson.dumps({"id": i, "name": f"user {i}"}) + b"\n" for i in range(2000)]
    sink = io.BytesIO()
    with EncryptingWriter(sink, key, chunk_size=1000) as writer:
        with gzip.GzipFile(fileobj=writer, mode="wb") as gz:
            gz.writelines(lines)
    reader = DecryptingReader(io.BytesIO(sink.getvalue()), key, name=NAME)
    with gzip.GzipFile(fileobj=reader, mode="rb") as gz:
        assert gz.readlines() == lines


def test_header_records_algorithm_and_chunk_size(repo):
    config, key = repo
    reader = DecryptingReader(io.BytesIO(encrypt(key, b"x", chunk_size=123)), key)
    assert reader.algorithm == config["algorithm"] and reader.chunk_size == 123
    assert encrypt(key, b"")[:8] == b"\x89BPE\r\n\x1a\n"


# --------------------------------------------------------------------------- keys


def test_wrong_passphrase(repo):
    config, _ = repo
    with pytest.raises(WrongKey, match=r"^wrong key: "):
        RepositoryKey.open(config, passphrase="incorrect horse")
    assert issubclass(WrongKey, UsageError)


def test_raw_key(repo):
    raw = os.urandom(32)
    config = RepositoryKey.create_config(raw_key=raw, algorithm="chacha20-poly1305")
    assert config["kdf"] == "none" and config["kdf_params"] == {}
    key = RepositoryKey.open(config, raw_key=raw)
    assert decrypt(key, encrypt(key, b"hello" * 50)) == b"hello" * 50
    with pytest.raises(WrongKey):
        RepositoryKey.open(config, raw_key=os.urandom(32))
    with pytest.raises(KeyArgumentError, match="raw key"):
        RepositoryKey.open(config, passphrase="pw")
    with pytest.raises(KeyArgumentError):
        RepositoryKey.open(repo[0], raw_key=raw)  # passphrase repository


def test_file_of_another_repository_is_wrong_key(key):
    other = RepositoryKey.open(RepositoryKey.create_config("correct horse", **FAST), passphrase="correct horse")
    blob = encrypt(key, b"secret" * 100)
    with pytest.raises(WrongKey, match=NAME):
        DecryptingReader(io.BytesIO(blob), other, name=NAME)


def test_bad_arguments():
    with pytest.raises(KeyArgumentError):
        RepositoryKey.create_config()
    with pytest.raises(KeyArgumentError):
        RepositoryKey.create_config("pw", raw_key=os.urandom(32), **FAST)
    with pytest.raises(KeyArgumentError):
        RepositoryKey.create_config(raw_key=b"short")
    with pytest.raises(KeyArgumentError):
        RepositoryKey.create_config("pw", algorithm="rot13", **FAST)
    with pytest.raises(KeyArgumentError):
        RepositoryKey.create_config("pw", scrypt_n=1000)  # not a power of two
    key = RepositoryKey.open(RepositoryKey.create_config(raw_key=bytes(32)), raw_key=bytes(32))
    for bad in (0, -1, crypto.MAX_CHUNK_SIZE + 1, 1.5):
        with pytest.raises(KeyArgumentError):
            EncryptingWriter(io.BytesIO(), key, chunk_size=bad)


def test_salt_differs_and_config_holds_no_key_material():
    raw = os.urandom(32)
    a = RepositoryKey.create_config(raw_key=raw)
    b = RepositoryKey.create_config(raw_key=raw)
    assert a["salt"] != b["salt"] and a["key_check"] != b["key_check"]
    assert len(base64.b64decode(a["salt"])) == 16
    text = json.dumps(a)
    assert json.loads(text) == a == orjson.loads(orjson.dumps(a))
    key = RepositoryKey.open(a, raw_key=raw)
    for secret in (raw, key._file_key, key._check_key):
        for form in (base64.b64encode(secret).decode(), secret.hex(), base64.urlsafe_b64encode(secret).decode()):
            assert form not in text
        assert secret not in text.encode("latin-1")
    p = RepositoryKey.create_config("hunter2 passphrase", **FAST)
    assert "hunter2" not in json.dumps(p)
    assert set(p) == {"format", "version", "algorithm", "kdf", "kdf_params", "salt", "key_check"}
    assert "RepositoryKey(" in repr(key) and base64.b64encode(key._file_key).decode() not in repr(key)


def test_scrypt_parameters_are_stored_and_used(monkeypatch):
    calls = []
    real = crypto.Scrypt

    def spy(**kwargs):
        calls.append({k: kwargs[k] for k in ("n", "r", "p")})
        return real(**kwargs)

    monkeypatch.setattr(crypto, "Scrypt", spy)
    config = RepositoryKey.create_config("pw", scrypt_n=2**11, scrypt_r=4, scrypt_p=2)
    assert config["kdf"] == "scrypt" and config["kdf_params"] == {"n": 2**11, "r": 4, "p": 2}
    RepositoryKey.open(config, passphrase="pw")
    assert calls == [{"n": 2**11, "r": 4, "p": 2}] * 2
    for field, value in (("n", 2**10), ("r", 8), ("p", 1)):
        changed = json.loads(json.dumps(config))
        changed["kdf_params"][field] = value
        with pytest.raises(WrongKey):
            RepositoryKey.open(changed, passphrase="pw")
    hostile = json.loads(json.dumps(config))
    hostile["kdf_params"]["n"] = 2**30
    with pytest.raises(InvalidCryptoConfig, match="1 GiB"):
        RepositoryKey.open(hostile, passphrase="pw")


def test_default_scrypt_parameters():
    config = RepositoryKey.create_config("pw")
    assert config["kdf_params"] == {"n": 2**15, "r": 8, "p": 1}
    assert config["algorithm"] == "aes-256-gcm"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("salt"),
        lambda c: c.update(salt="!!notbase64"),
        lambda c: c.update(key_check=base64.b64encode(b"x" * 5).decode()),
        lambda c: c.update(algorithm="rot13"),
        lambda c: c.update(kdf="argon9"),
        lambda c: c.update(version=99),
    ],
)
def test_invalid_config(repo, mutate):
    config = json.loads(json.dumps(repo[0]))
    mutate(config)
    with pytest.raises(InvalidCryptoConfig, match="crypto config"):
        RepositoryKey.open(config, passphrase="correct horse")


# --------------------------------------------------------------------------- tampering


@pytest.fixture(scope="module")
def sample(key):
    data = random.Random(7).randbytes(5 * CS + 10)  # chunks 0..4 full, chunk 5 final (10 bytes)
    return data, encrypt(key, data)


def test_every_flipped_header_byte_is_detected(key, sample):
    data, blob = sample
    kinds = {}
    for at in range(HEADER_SIZE):
        with pytest.raises((IntegrityError, WrongKey)) as info:
            decrypt(key, flip(blob, at))
        assert NAME in str(info.value)
        kinds[at] = type(info.value)
    assert kinds[0] is NotEncrypted
    assert kinds[8] is UnsupportedFormat  # version
    assert kinds[9] is UnsupportedFormat  # algorithm id
    assert kinds[15] is TamperedHeader  # chunk size
    assert kinds[20] is TamperedHeader  # file id
    assert kinds[33] is WrongKey  # key id (cannot be told from another key)
    assert kinds[50] is TamperedHeader  # header tag
    assert all(issubclass(k, (BadHeader, WrongKey)) for k in kinds.values())


def test_flipped_byte_in_chunk_2_names_the_chunk_and_releases_nothing_of_it(key, sample):
    data, blob = sample
    bad = flip(blob, chunk_offset(2) + 5)
    reader = DecryptingReader(io.BytesIO(bad), key, name=NAME)
    got = bytearray()
    with pytest.raises(TamperedChunk) as info:
        while piece := reader.read(CS // 2):
            got += piece
    assert str(info.value) == (
        f"{NAME}: chunk 2 failed authentication (tampered, reordered or wrong file) "
        f"at byte {chunk_offset(2)}"
    )
    assert info.value.chunk == 2 and info.value.name == NAME
    assert bytes(got) == data[: 2 * CS]  # chunks 0 and 1 only
    with pytest.raises(TamperedChunk):  # the error sticks
        reader.read(1)
    # the tag of a chunk too
    with pytest.raises(TamperedChunk, match="chunk 3 failed"):
        decrypt(key, flip(blob, chunk_offset(4) - 1))


def test_every_flipped_byte_is_detected(key):
    data = os.urandom(3 * CS + 5)
    blob = encrypt(key, data)
    for at in range(len(blob)):
        with pytest.raises((IntegrityError, WrongKey)):
            decrypt(key, flip(blob, at))


def test_flipped_byte_in_final_chunk(key, sample):
    data, blob = sample
    with pytest.raises(TruncatedOrTamperedFinalChunk, match=f"^{NAME}: chunk 5 .*final chunk") as info:
        decrypt(key, flip(blob, len(blob) - 3))
    assert isinstance(info.value, TamperedChunk) and isinstance(info.value, TruncatedFile)


def test_swapped_dropped_duplicated_chunks(key, sample):
    data, blob = sample
    chunks = [blob[chunk_offset(i) : chunk_offset(i + 1)] for i in range(6)]
    header = blob[:HEADER_SIZE]
    assert header + b"".join(chunks) == blob
    swapped = header + chunks[0] + chunks[2] + chunks[1] + b"".join(chunks[3:])
    with pytest.raises(TamperedChunk, match="chunk 1 failed"):
        decrypt(key, swapped)
    dropped = header + chunks[0] + b"".join(chunks[2:])
    with pytest.raises(TamperedChunk, match="chunk 1 failed"):
        decrypt(key, dropped)
    duplicated = header + chunks[0] + chunks[0] + b"".join(chunks[1:])
    with pytest.raises(TamperedChunk, match="chunk 1 failed"):
        decrypt(key, duplicated)
    # final chunk moved before the end: a full chunk where the short final one should be
    with pytest.raises(IntegrityError):
        decrypt(key, header + chunks[5] + b"".join(chunks[:5]))


def test_chunk_from_another_file_with_the_same_key(key, sample):
    data, blob = sample
    other = encrypt(key, data)
    spliced = blob[: chunk_offset(1)] + other[chunk_offset(1) : chunk_offset(2)] + blob[chunk_offset(2) :]
    with pytest.raises(TamperedChunk, match="chunk 1 failed"):
        decrypt(key, spliced)
    # the other file's header on this file's chunks
    with pytest.raises(TamperedChunk, match="chunk 0 failed"):
        decrypt(key, other[:HEADER_SIZE] + blob[HEADER_SIZE:])


@pytest.mark.parametrize("size", [5 * CS + 10, 5 * CS, 0])
def test_truncated_at_chunk_boundaries(key, size):
    data = os.urandom(size)
    blob = encrypt(key, data)
    boundaries = [chunk_offset(i) for i in range(size // CS + 1)]
    assert boundaries[-1] < len(blob)
    for cut in boundaries:
        with pytest.raises(TruncatedFile, match=f"^{NAME}: ends before its final chunk \\(truncated") as info:
            decrypt(key, blob[:cut])
        assert not isinstance(info.value, TamperedChunk)


def test_truncated_anywhere(key):
    data = os.urandom(3 * CS + 9)
    blob = encrypt(key, data)
    with pytest.raises(NotEncrypted):
        decrypt(key, b"")
    for cut in range(1, len(blob)):
        with pytest.raises(TruncatedFile, match=f"^{NAME}: "):
            decrypt(key, blob[:cut])
    # mid-chunk specifically
    with pytest.raises(TruncatedFile, match="chunk 1"):
        decrypt(key, blob[: chunk_offset(1) + 20])
    with pytest.raises(TruncatedFile, match="truncated inside chunk 3"):
        decrypt(key, blob[: chunk_offset(3) + 3])


@pytest.mark.parametrize("size", [5 * CS + 10, 5 * CS, 0])
@pytest.mark.parametrize("extra", [1, 15, 16, 40, CS + TAG_SIZE, 3 * CS])
def test_appended_garbage_is_detected(key, size, extra):
    blob = encrypt(key, os.urandom(size))
    with pytest.raises(IntegrityError, match=NAME):
        decrypt(key, blob + os.urandom(extra))
    with pytest.raises(IntegrityError):  # even a copy of a valid final chunk
        decrypt(key, blob + blob[-(size % CS) - TAG_SIZE :])


def test_not_encrypted(key):
    with pytest.raises(NotEncrypted, match=f"^{NAME}: not an encrypted backup file"):
        decrypt(key, gzip.compress(b'{"id": 1}\n' * 10))
    with pytest.raises(TruncatedFile, match="header"):
        decrypt(key, encrypt(key, b"abc")[:20])


def test_two_files_same_key_differ(key):
    data = b"\x00" * (3 * CS)
    a, b = encrypt(key, data), encrypt(key, data)
    assert a != b and a[16:32] != b[16:32]  # file ids
    assert a[chunk_offset(0) : chunk_offset(1)] != b[chunk_offset(0) : chunk_offset(1)]
    assert decrypt(key, a) == decrypt(key, b) == data


# --------------------------------------------------------------------------- writer lifecycle


def test_writer_finalizes_only_on_clean_close(key):
    sink = io.BytesIO()
    with pytest.raises(RuntimeError):
        with EncryptingWriter(sink, key, chunk_size=CS) as writer:
            writer.write(b"x" * (2 * CS))
            raise RuntimeError("backup failed")
    assert writer.closed and not sink.closed
    with pytest.raises(TruncatedFile):
        decrypt(key, sink.getvalue())

    sink = io.BytesIO()
    writer = EncryptingWriter(sink, key, chunk_size=CS)
    writer.write(b"y" * 10)
    del writer
    gc.collect()
    with pytest.raises(TruncatedFile):
        decrypt(key, sink.getvalue())

    sink = io.BytesIO()
    with EncryptingWriter(sink, key, chunk_size=CS) as writer:
        writer.write(b"z" * 100)
    writer.close()  # idempotent
    assert writer.plaintext_bytes == 100 and writer.ciphertext_bytes == len(sink.getvalue())
    assert decrypt(key, sink.getvalue()) == b"z" * 100
    with pytest.raises(ValueError):
        writer.write(b"more")


def test_writer_handles_partial_raw_writes(key):
    class Trickle(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            n = min(len(b), 5)
            self.data += bytes(b[:n])
            return n

    class Broken(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            if len(b) > HEADER_SIZE:
                raise OSError("disk full")
            return len(b)

    writer = EncryptingWriter(Broken(), key, chunk_size=CS)
    with pytest.raises(OSError, match="disk full"):
        writer.write(b"x" * CS)
    with pytest.raises(ValueError, match="earlier write"):
        writer.write(b"x")
    writer.close()  # no final chunk attempted after a failure

    sink = Trickle()
    data = os.urandom(3 * CS + 1)
    with EncryptingWriter(sink, key, chunk_size=CS) as writer:
        writer.write(data)
    assert decrypt(key, bytes(sink.data)) == data


# --------------------------------------------------------------------------- bounded memory


class GeneratorRaw(io.RawIOBase):
    """A readable raw file over an iterator of byte strings (e.g. a network stream)."""

    def __init__(self, pieces):
        self._it, self._buf, self._pos = iter(pieces), b"", 0

    def readable(self):
        return True

    def readinto(self, b):
        while self._pos >= len(self._buf):
            try:
                self._buf, self._pos = next(self._it), 0
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n


def test_decryption_memory_is_bounded_by_a_chunk(key):
    mib = 1 << 20
    block = os.urandom(mib)
    total_blocks = 50
    expected = hashlib.sha256()
    for _ in range(total_blocks):
        expected.update(block)

    def encrypted_stream():
        out: list[bytes] = []

        class ListSink:
            def write(self, b):
                assert type(b) is bytes  # the writer hands over fresh bytes it does not reuse
                out.append(b)
                return len(b)

        writer = EncryptingWriter(ListSink(), key, chunk_size=mib)
        for _ in range(total_blocks):
            writer.write(block)
            yield from out
            out.clear()
        writer.close()
        yield from out

    tracemalloc.start()
    try:
        reader = DecryptingReader(GeneratorRaw(encrypted_stream()), key, name=NAME)
        digest, size = hashlib.sha256(), 0
        while piece := reader.read(64 * 1024):
            digest.update(piece)
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total_blocks * mib and digest.digest() == expected.digest()
    assert peak < 8 * mib, f"peak {peak / mib:.1f} MiB"


def test_reader_over_a_duck_typed_raw_file_with_short_reads(key, sample):
    data, blob = sample

    class Trickle:  # only read(), at most 7 bytes a call (a slow socket)
        def __init__(self, b):
            self._b = io.BytesIO(b)

        def read(self, n):
            return self._b.read(min(n, 7))

    assert DecryptingReader(Trickle(blob), key, name=NAME).read() == data
    with pytest.raises(TamperedChunk, match="chunk 2 failed"):
        DecryptingReader(Trickle(flip(blob, chunk_offset(2) + 1)), key, name=NAME).read()
