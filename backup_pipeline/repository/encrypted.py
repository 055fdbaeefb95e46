"""Client-side encryption as a repository wrapper (restic's layering): every backup file is
stored as an authenticated, chunked stream (backup_pipeline.crypto), keyed from a passphrase
through scrypt with a random salt per repository, or from a raw key.

`crypto.json` at the repository root holds the algorithm, KDF, parameters, salt and a key
check value, never the key; each manifest repeats it so a backup describes itself. Manifests
stay readable without the key (list, status and sha256 verification work without it); the
data and index files are not.
"""

from __future__ import annotations

from typing import BinaryIO

import orjson

from ..crypto import DecryptingReader, EncryptingWriter, RepositoryKey
from ..errors import UsageError

CONFIG_NAME = "crypto.json"


class EncryptedRepository:
    """Stored bytes pass through unchanged; `seal`/`unseal` add the encryption layer."""

    def __init__(self, inner, config: dict, key: RepositoryKey | None):
        self.inner, self.config, self.key = inner, config, key
        self.url = inner.url

    def __getattr__(self, name):  # every other repository operation is the inner one's
        return getattr(self.inner, name)

    def commit_manifest(self, backup_id: str, manifest: dict) -> None:
        self.inner.commit_manifest(backup_id, {**manifest, "encryption": self.config})


def open_encrypted(repo, *, passphrase: str | None = None, raw_key: bytes | None = None, create: bool = False,
                   algorithm: str = "aes-256-gcm"):
    """The repository as it is: encrypted if it has a crypto.json (the key is checked now:
    a wrong key says so before anything is read or written), plain otherwise. With `create`,
    a plain repository without backups becomes encrypted."""
    data = repo.read_root(CONFIG_NAME)
    if data is None:
        if not create:
            if passphrase or raw_key:
                raise UsageError(f"repository {repo.url} is not encrypted; pass --encrypt to encrypt a new repository")
            return repo
        if repo.backup_ids():
            raise UsageError(f"repository {repo.url} already holds unencrypted backups; encrypt a new repository")
        config, key = RepositoryKey.create(passphrase=passphrase, raw_key=raw_key, algorithm=algorithm)
        if not repo.create_root(CONFIG_NAME, orjson.dumps(config, option=orjson.OPT_INDENT_2)):
            data = repo.read_root(CONFIG_NAME)  # someone else created it just now: use theirs
        else:
            return EncryptedRepository(repo, config, key)
    config = orjson.loads(data)
    key = RepositoryKey.open(config, passphrase=passphrase, raw_key=raw_key) if (passphrase or raw_key) else None
    return EncryptedRepository(repo, config, key)


def seal(repo, raw: BinaryIO) -> BinaryIO:
    """The writer a backup file goes through before reaching storage."""
    if isinstance(repo, EncryptedRepository):
        if repo.key is None:
            raise UsageError(f"repository {repo.url} is encrypted: give its passphrase (--repo-passphrase) or key")
        return EncryptingWriter(raw, repo.key)
    return raw


def unseal(repo, raw: BinaryIO, name: str) -> BinaryIO:
    """The reader of a stored backup file: decrypting and authenticating when encrypted."""
    if isinstance(repo, EncryptedRepository):
        if repo.key is None:
            raise UsageError(f"repository {repo.url} is encrypted: give its passphrase (--repo-passphrase) or key")
        return DecryptingReader(raw, repo.key, name=name)
    return raw


def is_encrypted(repo) -> bool:
    return isinstance(repo, EncryptedRepository)


def can_read_content(repo) -> bool:
    return not isinstance(repo, EncryptedRepository) or repo.key is not None
