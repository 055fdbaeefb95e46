"""Client-side encryption of backup files: streaming, authenticated chunk by chunk.

Backups are written as byte streams (compressed JSONL, possibly GBs) into a repository.
This module encrypts such a stream while it is written and decrypts it while it is read,
holding one chunk (writer) or two chunk-sized buffers (reader) in memory, and never hands
out plaintext that has not been authenticated. It depends on nothing else in the project
except `errors.py`.

Keys
====

A repository has one master key, from a passphrase (scrypt) or given raw (32 bytes).
The repository stores a *crypto config* (JSON, no key material)::

    {
      "format": "backup_pipeline-crypto", "version": 1,
      "algorithm": "aes-256-gcm" | "chacha20-poly1305",
      "kdf": "scrypt" | "none",
      "kdf_params": {"n": 32768, "r": 8, "p": 1},      # {} when kdf is "none"
      "salt": "<base64 of 16 random bytes, one per repository>",
      "key_check": "<base64 of HMAC-SHA256(check_key, 'backup_pipeline/crypto v1 key check')>"
    }

    master     = scrypt(NFC(passphrase) as UTF-8, salt, n, r, p, 32 bytes)   (kdf "scrypt")
               = raw_key                                                      (kdf "none")
    file_key   = HKDF-SHA256(master, salt, info="backup_pipeline/crypto v1 file encryption")
    check_key  = HKDF-SHA256(master, salt, info="backup_pipeline/crypto v1 key check")
    key_id     = HMAC-SHA256(check_key, "backup_pipeline/crypto v1 key id")[:8]

`RepositoryKey.open` recomputes `key_check` and raises `WrongKey` before any data is read.

Stream format (version 1)
=========================

All integers are big-endian. An encrypted file is a 56-byte header followed by chunks::

    offset size  field
    0      8     magic           89 42 50 45 0d 0a 1a 0a  ("\\x89BPE\\r\\n\\x1a\\n", PNG-style:
                                 catches text-mode and 7-bit mangling)
    8      1     version         1
    9      1     algorithm id    1 = AES-256-GCM, 2 = ChaCha20-Poly1305
    10     2     flags           0, or 0x0001 BOUND: the file is bound to its context (below);
                                 other bits are rejected
    12     4     chunk size      plaintext bytes per full chunk, 1 .. 64 MiB (default 1 MiB)
    16     16    file id         random per file
    32     8     key id          identifies the repository key (wrong key -> WrongKey)
    40     16    header tag      HMAC-SHA256(commit_key, header[0:40])[:16]

Per file, from the file id (so no two files share an AEAD key, even with equal nonces)::

    aead_key || commit_key = HKDF-SHA256(file_key, salt=file id,
                                         info="backup_pipeline/crypto v1 file" || algorithm id,
                                         64 bytes)

The header tag authenticates the header on its own and commits to the key (AES-GCM and
ChaCha20-Poly1305 are not key-committing). Then come chunks, numbered from 0 (STREAM
construction, Hoang-Reyhanitabar-Rogaway-Vizár 2015)::

    chunk i = AEAD-seal(aead_key, nonce_i, plaintext_i, aad = the 56 header bytes || context)
            = ciphertext_i (len(plaintext_i) bytes) || tag_i (16 bytes)
    nonce_i = i as 11-byte big-endian counter || final flag (1 byte: 0x01 on the last chunk)

Every chunk except the last holds exactly `chunk size` plaintext bytes; the last chunk holds
0 .. chunk size - 1 bytes (it is empty when the plaintext is a multiple of the chunk size)
and is the only one sealed with the final flag. A reader therefore knows a chunk is the last
one from its length (shorter than chunk size + 16), and:

* a flipped bit fails authentication of its chunk (or of the header);
* swapped, dropped or duplicated chunks fail (the counter is in the nonce);
* a chunk from another file fails (different per-file key, header in the AAD);
* a whole file from another backup, or under another name, fails: a BOUND file has its
  context (the repository layer gives "BACKUP_ID/FILE NAME") in every chunk's AAD, and the
  flag itself is covered by the header tag, so it cannot be stripped. Files written without
  a context (flag 0, as before the flag existed) are read as they were;
* truncation at a chunk boundary is detected (no chunk with the final flag was seen);
* truncation inside a chunk, or bytes appended after the final chunk, fail authentication
  of the final chunk or are reported as trailing data.

Encrypted size: 56 + (p // c) * (c + 16) + (p % c) + 16 for p plaintext bytes and chunk
size c (`encrypted_size`).

Streaming caveat: chunks are returned as soon as they are authenticated, so a consumer sees
the plaintext of the chunks before a damaged one. Whatever is built from a stream must only
be committed once the reader has reached EOF without error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import os
import struct
import unicodedata
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import (BadHeader, IntegrityError, InvalidCryptoConfig, KeyArgumentError, NotEncrypted, TamperedChunk,  # noqa: F401
                      TamperedHeader, TrailingData, TruncatedFile, TruncatedOrTamperedFinalChunk, UnsupportedFormat,
                      UsageError, WrongKey)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "MAX_CHUNK_SIZE",
    "TAG_SIZE",
    "BadHeader",
    "DecryptingReader",
    "EncryptingWriter",
    "InvalidCryptoConfig",
    "KeyArgumentError",
    "NotEncrypted",
    "RepositoryKey",
    "TamperedChunk",
    "TamperedHeader",
    "TrailingData",
    "TruncatedFile",
    "TruncatedOrTamperedFinalChunk",
    "UnsupportedFormat",
    "WrongKey",
    "encrypted_size",
]

# --------------------------------------------------------------------------- constants

MAGIC = b"\x89BPE\r\n\x1a\n"
FORMAT_VERSION = 1
CONFIG_FORMAT = "backup_pipeline-crypto"
CONFIG_VERSION = 1

ALGORITHMS: dict[str, int] = {"aes-256-gcm": 1, "chacha20-poly1305": 2}
_AEAD_BY_ID = {1: AESGCM, 2: ChaCha20Poly1305}
_NAME_BY_ID = {v: k for k, v in ALGORITHMS.items()}

KEY_SIZE = 32
SALT_SIZE = 16
FILE_ID_SIZE = 16
KEY_ID_SIZE = 8
HEADER_TAG_SIZE = 16
FLAG_BOUND = 0x0001  # chunks authenticate the file's context (backup id and name) too
TAG_SIZE = 16  # AEAD tag per chunk (both algorithms)
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 1 << 26  # a hostile header cannot make a reader allocate more than this

_HEADER_BODY = struct.Struct(">8sBBHI16s8s")  # everything before the header tag
HEADER_SIZE = _HEADER_BODY.size + HEADER_TAG_SIZE  # 56
assert HEADER_SIZE == 56

DEFAULT_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_SCRYPT_MAX_MEMORY = 1 << 30  # 128 * n * r bytes; refuse configs demanding more

_INFO_FILE_KEY = b"backup_pipeline/crypto v1 file encryption"
_INFO_CHECK_KEY = b"backup_pipeline/crypto v1 key check"
_LABEL_KEY_CHECK = b"backup_pipeline/crypto v1 key check"
_LABEL_KEY_ID = b"backup_pipeline/crypto v1 key id"
_INFO_PER_FILE = b"backup_pipeline/crypto v1 file"


# --------------------------------------------------------------------------- errors


def _label(name: str) -> str:
    return name or "encrypted stream"


# --------------------------------------------------------------------------- helpers


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidCryptoConfig(f"crypto config: {what} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidCryptoConfig(f"crypto config: {what} is not valid base64 ({exc})") from None
    if len(raw) != size:
        raise InvalidCryptoConfig(f"crypto config: {what} must be {size} bytes, got {len(raw)}")
    return raw


def _hkdf(key: bytes, salt: bytes | None, info: bytes, length: int = KEY_SIZE) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def _check_scrypt_params(n: Any, r: Any, p: Any, error: type[Exception]) -> None:
    for label, value in (("n", n), ("r", r), ("p", p)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise error(f"scrypt parameter {label} must be a positive integer, got {value!r}")
    if n < 2 or n & (n - 1):
        raise error(f"scrypt parameter n must be a power of two >= 2, got {n}")
    if 128 * n * r > _SCRYPT_MAX_MEMORY:
        raise error(f"scrypt parameters n={n}, r={r} need more than 1 GiB of memory")
    if p > 64:
        raise error(f"scrypt parameter p must be <= 64, got {p}")


def _check_chunk_size(chunk_size: Any) -> int:
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
        raise KeyArgumentError(f"chunk_size must be an integer, got {chunk_size!r}")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise KeyArgumentError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}, got {chunk_size}")
    return chunk_size


def _nonce(counter: int, final: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def encrypted_size(plain_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Exact size of the encrypted file for `plain_size` plaintext bytes."""
    if plain_size < 0:
        raise ValueError(f"plain_size must be >= 0, got {plain_size}")
    _check_chunk_size(chunk_size)
    full, rest = divmod(plain_size, chunk_size)
    return HEADER_SIZE + full * (chunk_size + TAG_SIZE) + rest + TAG_SIZE


# --------------------------------------------------------------------------- keys


class RepositoryKey:
    """The opened key of a repository: subkeys only, never the passphrase or master key."""

    __slots__ = ("algorithm", "_file_key", "_check_key", "key_id")

    def __init__(self, master: bytes, salt: bytes, algorithm: str):
        if algorithm not in ALGORITHMS:
            raise KeyArgumentError(
                f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
            )
        self.algorithm = algorithm
        self._file_key = _hkdf(master, salt, _INFO_FILE_KEY)
        self._check_key = _hkdf(master, salt, _INFO_CHECK_KEY)
        self.key_id = hmac.new(self._check_key, _LABEL_KEY_ID, hashlib.sha256).digest()[:KEY_ID_SIZE]

    def __repr__(self) -> str:
        return f"RepositoryKey(algorithm={self.algorithm!r}, key_id={self.key_id.hex()})"

    # ---- creation / opening

    @staticmethod
    def _master(
        passphrase: str | None, raw_key: bytes | None, salt: bytes, kdf: str, params: dict
    ) -> bytes:
        if kdf == "none":
            return bytes(raw_key)  # type: ignore[arg-type]
        secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")  # type: ignore[arg-type]
        return Scrypt(salt=salt, length=KEY_SIZE, n=params["n"], r=params["r"], p=params["p"]).derive(
            secret
        )

    @staticmethod
    def _check_secret_args(passphrase: str | None, raw_key: bytes | None) -> str:
        if (passphrase is None) == (raw_key is None):
            raise KeyArgumentError("give exactly one of passphrase or raw_key")
        if passphrase is not None:
            if not isinstance(passphrase, str) or not passphrase:
                raise KeyArgumentError("passphrase must be a non-empty string")
            return "scrypt"
        if not isinstance(raw_key, (bytes, bytearray, memoryview)) or len(raw_key) != KEY_SIZE:
            raise KeyArgumentError(f"raw_key must be {KEY_SIZE} bytes")
        return "none"

    def _key_check(self) -> bytes:
        return hmac.new(self._check_key, _LABEL_KEY_CHECK, hashlib.sha256).digest()

    @classmethod
    def create(
        cls,
        passphrase: str | None = None,
        raw_key: bytes | None = None,
        algorithm: str = "aes-256-gcm",
        *,
        scrypt_n: int = DEFAULT_SCRYPT["n"],
        scrypt_r: int = DEFAULT_SCRYPT["r"],
        scrypt_p: int = DEFAULT_SCRYPT["p"],
    ) -> tuple[dict, RepositoryKey]:
        """New repository: its config (to store) and the opened key (derived once)."""
        kdf = cls._check_secret_args(passphrase, raw_key)
        if algorithm not in ALGORITHMS:
            raise KeyArgumentError(
                f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
            )
        params: dict = {}
        if kdf == "scrypt":
            _check_scrypt_params(scrypt_n, scrypt_r, scrypt_p, KeyArgumentError)
            params = {"n": scrypt_n, "r": scrypt_r, "p": scrypt_p}
        salt = os.urandom(SALT_SIZE)
        key = cls(cls._master(passphrase, raw_key, salt, kdf, params), salt, algorithm)
        config = {
            "format": CONFIG_FORMAT,
            "version": CONFIG_VERSION,
            "algorithm": algorithm,
            "kdf": kdf,
            "kdf_params": params,
            "salt": _b64(salt),
            "key_check": _b64(key._key_check()),
        }
        return config, key

    @classmethod
    def create_config(
        cls,
        passphrase: str | None = None,
        raw_key: bytes | None = None,
        algorithm: str = "aes-256-gcm",
        *,
        scrypt_n: int = DEFAULT_SCRYPT["n"],
        scrypt_r: int = DEFAULT_SCRYPT["r"],
        scrypt_p: int = DEFAULT_SCRYPT["p"],
    ) -> dict:
        """A new JSON-serialisable repository crypto config (fresh salt, no key material)."""
        config, _ = cls.create(
            passphrase, raw_key, algorithm, scrypt_n=scrypt_n, scrypt_r=scrypt_r, scrypt_p=scrypt_p
        )
        return config

    @classmethod
    def open(
        cls, config: dict, passphrase: str | None = None, raw_key: bytes | None = None
    ) -> RepositoryKey:
        """Open a repository's key; `WrongKey` if it does not match the config's key check."""
        if not isinstance(config, dict):
            raise InvalidCryptoConfig("crypto config must be a JSON object")
        if config.get("format") != CONFIG_FORMAT or config.get("version") != CONFIG_VERSION:
            raise InvalidCryptoConfig(
                f"crypto config: unsupported format/version {config.get('format')!r}/"
                f"{config.get('version')!r} (expected {CONFIG_FORMAT!r}/{CONFIG_VERSION})"
            )
        algorithm = config.get("algorithm")
        if algorithm not in ALGORITHMS:
            raise InvalidCryptoConfig(f"crypto config: unknown algorithm {algorithm!r}")
        kdf = config.get("kdf")
        params = config.get("kdf_params")
        if kdf not in ("scrypt", "none") or not isinstance(params, dict):
            raise InvalidCryptoConfig(f"crypto config: unknown kdf {kdf!r} or missing kdf_params")
        if kdf == "scrypt":
            _check_scrypt_params(
                params.get("n"), params.get("r"), params.get("p"), InvalidCryptoConfig
            )
        salt = _unb64(config.get("salt"), "salt", SALT_SIZE)
        expected = _unb64(config.get("key_check"), "key_check", 32)
        given = cls._check_secret_args(passphrase, raw_key)
        if given != kdf:
            wanted = "a passphrase" if kdf == "scrypt" else "a raw key"
            raise KeyArgumentError(f"this repository is opened with {wanted}")
        key = cls(cls._master(passphrase, raw_key, salt, kdf, params), salt, algorithm)
        if not hmac.compare_digest(key._key_check(), expected):
            what = "passphrase" if kdf == "scrypt" else "raw key"
            raise WrongKey(f"wrong key: the {what} does not match this repository's key check")
        return key

    # ---- per file

    def _file_cipher(self, algorithm_id: int, file_id: bytes):
        material = _hkdf(self._file_key, file_id, _INFO_PER_FILE + bytes([algorithm_id]), 64)
        return _AEAD_BY_ID[algorithm_id](material[:KEY_SIZE]), material[KEY_SIZE:]

    def _header(self, chunk_size: int, flags: int = 0) -> tuple[bytes, Any]:
        algorithm_id = ALGORITHMS[self.algorithm]
        file_id = os.urandom(FILE_ID_SIZE)
        aead, commit_key = self._file_cipher(algorithm_id, file_id)
        body = _HEADER_BODY.pack(
            MAGIC, FORMAT_VERSION, algorithm_id, flags, chunk_size, file_id, self.key_id
        )
        tag = hmac.new(commit_key, body, hashlib.sha256).digest()[:HEADER_TAG_SIZE]
        return body + tag, aead


# --------------------------------------------------------------------------- writer


class EncryptingWriter(io.RawIOBase):
    """Writable binary file: encrypts into `raw_file` chunk by chunk.

    `close()` (or leaving a `with` block normally) writes the final chunk and flushes
    `raw_file` but does not close it. Leaving a `with` block by an exception, `abort()`,
    a failed write, or garbage collection without `close()` leave the final chunk out, so
    the partial file is later reported as truncated instead of passing as complete.
    `flush()` cannot push out a partial chunk (all chunks but the last are full).
    """

    def __init__(self, raw_file, key: RepositoryKey, *, chunk_size: int = DEFAULT_CHUNK_SIZE, context: bytes = b""):
        super().__init__()
        self._aborted = True  # until the header is out: never seal a final chunk
        if not isinstance(key, RepositoryKey):
            raise KeyArgumentError(f"key must be a RepositoryKey, got {type(key).__name__}")
        self._chunk_size = _check_chunk_size(chunk_size)
        self._raw = raw_file
        self._buf = memoryview(bytearray(self._chunk_size))  # the pending partial chunk
        self._fill = 0
        self._counter = 0
        self.plaintext_bytes = 0
        self.ciphertext_bytes = 0
        self._header, self._aead = key._header(chunk_size, FLAG_BOUND if context else 0)
        self._aad = self._header + context
        self._write_raw(self._header)
        self._aborted = False

    def writable(self) -> bool:
        return True

    def _write_raw(self, data: bytes) -> None:
        # A fresh bytes object per call: sinks may keep it (e.g. queued multipart parts).
        n = self._raw.write(data)
        if n is not None and n < len(data):  # a raw file's partial write; None: all written
            view = memoryview(data)[n:]
            while view:
                n = self._raw.write(view)
                if n is None or n >= len(view):
                    break
                view = view[n:]
        self.ciphertext_bytes += len(data)

    def _seal(self, data, final: bool) -> None:
        self._write_raw(self._aead.encrypt(_nonce(self._counter, final), data, self._aad))
        self._counter += 1

    def write(self, b) -> int:
        if self.closed:
            raise ValueError("write to closed EncryptingWriter")
        if self._aborted:
            raise ValueError("EncryptingWriter failed in an earlier write; abort() it")
        view = memoryview(b).cast("B")
        n = len(view)
        cs = self._chunk_size
        try:
            pos = 0
            if self._fill:
                pos = min(cs - self._fill, n)
                self._buf[self._fill : self._fill + pos] = view[:pos]
                self._fill += pos
                if self._fill == cs:
                    self._seal(self._buf, False)  # a full chunk is never the final one
                    self._fill = 0
            while n - pos >= cs:
                self._seal(view[pos : pos + cs], False)  # straight from the caller's buffer
                pos += cs
            if pos < n:
                self._buf[: n - pos] = view[pos:]
                self._fill = n - pos
        except BaseException:
            self._aborted = True
            raise
        self.plaintext_bytes += n
        return n

    def abort(self) -> None:
        """Close without the final chunk: the written data will read as truncated."""
        self._aborted = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._aborted:
                self._aborted = True  # whatever happens now, never seal twice
                self._seal(self._buf[: self._fill], True)
                self._fill = 0
                flush = getattr(self._raw, "flush", None)
                if flush is not None:
                    flush()
        finally:
            self._buf = memoryview(b"")
            super().close()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self):
        try:
            if not self.closed:
                self._aborted = True
        except Exception:
            pass
        super().__del__()


# --------------------------------------------------------------------------- reader


class DecryptingReader(io.RawIOBase):
    """Readable binary file yielding the authenticated plaintext of an encrypted stream.

    The header is read and checked when the reader is created. `read(n)` returns up to `n`
    bytes (fewer only at EOF), `read()` / `readall()` everything; `readinto` copies without
    allocating. Any integrity error is raised again on every later read. Memory: two
    preallocated buffers of one chunk each (ciphertext and plaintext), reused for every
    chunk; a chunk's plaintext is only copied out after its tag verified (on failure the
    buffer is wiped). `raw_file` is read with `readinto` when it has one, else `read`.
    """

    def __init__(self, raw_file, key: RepositoryKey, *, name: str = "", context: bytes = b""):
        super().__init__()
        if not isinstance(key, RepositoryKey):
            raise KeyArgumentError(f"key must be a RepositoryKey, got {type(key).__name__}")
        self._raw = raw_file
        self.name = name
        self._error: BaseException | None = None
        self._len = 0  # authenticated plaintext bytes in self._plain
        self._pos = 0  # of which already returned
        self._eof = False
        self._counter = 0
        self._offset = HEADER_SIZE  # byte offset of the next chunk in the encrypted file
        self._read_header(key, context)
        self._cipher = memoryview(bytearray(self._chunk_size + TAG_SIZE))
        self._plain = memoryview(bytearray(self._chunk_size))

    def readable(self) -> bool:
        return True

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    @property
    def algorithm(self) -> str:
        return _NAME_BY_ID[self._algorithm_id]

    def _read_raw_into(self, view: memoryview) -> int:
        """Fill `view` from raw_file; fewer bytes only at its EOF."""
        readinto = getattr(self._raw, "readinto", None)
        got, want = 0, len(view)
        while got < want:
            if readinto is not None:
                n = readinto(view[got:])
            else:
                data = self._raw.read(want - got)
                n = None if data is None else len(data)
                if n:
                    view[got : got + n] = data
            if n is None:
                raise BlockingIOError(f"{_label(self.name)}: raw file returned no data (non-blocking)")
            if n == 0:
                break
            got += n
        return got

    def _read_header(self, key: RepositoryKey, context: bytes) -> None:
        where = _label(self.name)
        buf = memoryview(bytearray(HEADER_SIZE))
        header = bytes(buf[: self._read_raw_into(buf)])
        if not header:
            raise NotEncrypted(f"{where}: empty file, not an encrypted backup file")
        if header[: len(MAGIC)] != MAGIC[: len(header)]:
            raise NotEncrypted(f"{where}: not an encrypted backup file (bad magic bytes)")
        if len(header) < HEADER_SIZE:
            raise TruncatedFile(
                f"{where}: ends before its final chunk (truncated inside its "
                f"{HEADER_SIZE}-byte header, after {len(header)} bytes)"
            )
        body, tag = header[: _HEADER_BODY.size], header[_HEADER_BODY.size :]
        _, version, algorithm_id, flags, chunk_size, file_id, key_id = _HEADER_BODY.unpack(body)
        if version != FORMAT_VERSION:
            raise UnsupportedFormat(
                f"{where}: unsupported encrypted format version {version} (this reader knows "
                f"{FORMAT_VERSION})"
            )
        if algorithm_id not in _AEAD_BY_ID:
            raise UnsupportedFormat(f"{where}: unknown encryption algorithm id {algorithm_id}")
        if flags & ~FLAG_BOUND:
            raise UnsupportedFormat(f"{where}: unknown header flags 0x{flags:04x}")
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise BadHeader(
                f"{where}: header chunk size {chunk_size} out of range 1..{MAX_CHUNK_SIZE} "
                "(corrupt header)"
            )
        if not hmac.compare_digest(key_id, key.key_id):
            raise WrongKey(
                f"wrong key: {where} was encrypted with another repository key "
                "(or its header is corrupted)"
            )
        aead, commit_key = key._file_cipher(algorithm_id, file_id)
        expected = hmac.new(commit_key, body, hashlib.sha256).digest()[:HEADER_TAG_SIZE]
        if not hmac.compare_digest(tag, expected):
            raise TamperedHeader(f"{where}: header failed authentication (tampered or corrupt)")
        self._header, self._aead = header, aead
        self._aad = header + context if flags & FLAG_BOUND else header
        self._bound_hint = ("; or the file of another backup or name, copied here" if flags & FLAG_BOUND else "")
        self._algorithm_id, self._chunk_size = algorithm_id, chunk_size

    def _next_chunk(self) -> bool:
        """Decrypt and authenticate the next chunk into self._plain; False at the end."""
        if self._eof:
            return False
        where, index, offset = _label(self.name), self._counter, self._offset
        got = self._read_raw_into(self._cipher)
        if got == 0:
            raise TruncatedFile(
                f"{where}: ends before its final chunk (truncated at byte {offset}, after "
                f"{index} chunk{'s' if index != 1 else ''})"
            )
        final = got < len(self._cipher)
        if final and got < TAG_SIZE:
            raise TruncatedFile(
                f"{where}: ends before its final chunk (truncated inside chunk {index} at byte "
                f"{offset + got})"
            )
        plain = self._plain[: got - TAG_SIZE]
        try:
            self._aead.decrypt_into(_nonce(index, final), self._cipher[:got], self._aad, plain)
        except InvalidTag:
            plain[:] = bytes(len(plain))  # wipe what OpenSSL wrote before the tag check
            if final:
                raise TruncatedOrTamperedFinalChunk(
                    f"{where}: chunk {index} (at byte {offset}, {got} bytes) failed "
                    "authentication as the final chunk: truncated inside a chunk, tampered, "
                    "or followed by appended bytes" + self._bound_hint,
                    name=self.name,
                    chunk=index,
                ) from None
            raise TamperedChunk(
                f"{where}: chunk {index} failed authentication (tampered, reordered or wrong "
                f"file) at byte {offset}" + self._bound_hint,
                name=self.name,
                chunk=index,
            ) from None
        if final:
            extra = self._raw.read(1)
            if extra:
                plain[:] = bytes(len(plain))
                raise TrailingData(
                    f"{where}: unexpected bytes after the final chunk (at byte "
                    f"{offset + got}; appended data)"
                )
            self._eof = True
        self._counter += 1
        self._offset += got
        self._len, self._pos = len(plain), 0
        return True

    def _fill(self) -> int:
        """Number of unread authenticated plaintext bytes available; 0 at a clean EOF."""
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ValueError("read from closed DecryptingReader")
        try:
            while self._pos >= self._len:
                self._len = self._pos = 0
                if not self._next_chunk():
                    return 0
        except (IntegrityError, UsageError) as exc:
            self._error = exc
            raise
        return self._len - self._pos

    def readinto(self, b) -> int:
        out = memoryview(b).cast("B")
        done = 0
        while done < len(out) and (available := self._fill()):
            take = min(len(out) - done, available)
            out[done : done + take] = self._plain[self._pos : self._pos + take]
            self._pos += take
            done += take
        return done

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        first = b""
        parts: list[bytes] = []
        want = size
        while want > 0 and (available := self._fill()):
            take = min(want, available)
            piece = self._plain[self._pos : self._pos + take].tobytes()
            self._pos += take
            want -= take
            if first:
                parts.append(piece)
            else:
                first = piece
        return b"".join([first, *parts]) if parts else first

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while available := self._fill():
            parts.append(self._plain[self._pos : self._pos + available].tobytes())
            self._pos += available
        return b"".join(parts)

    def close(self) -> None:
        """Close the reader (not `raw_file`)."""
        if not self.closed:
            self._len = self._pos = 0
            self._cipher = self._plain = memoryview(b"")
        super().close()
