"""Client-side encryption as a layer of the repository (restic's layering): every backup file
is stored as an authenticated, chunked stream (crypto.py), keyed from a passphrase through
scrypt with a random salt per repository, or from a raw key.

`crypto.json` at the repository root holds the algorithm, KDF, parameters, salt and a key
check value, never the key; each manifest repeats it so a backup describes itself. Manifests
stay readable without the key (list, status and sha256 verification work without it); the
data and index files are not. Every repository has an `encryption`: `PLAIN` passes bytes
through, so callers (repository/files.py) never test which kind they hold.
"""

from __future__ import annotations

from typing import BinaryIO

import orjson

from ..errors import EncryptionKeyNeeded, IntegrityError, UsageError
from .crypto import DecryptingReader, EncryptingWriter, RepositoryKey

CONFIG_NAME = "crypto.json"


class Encryption:
    """The encryption layer of one repository: `config` None means plain (bytes pass through)."""

    def __init__(self, config: dict | None = None, key: RepositoryKey | None = None, url: str = ""):
        self.config, self.key, self.url = config, key, url

    @property
    def enabled(self) -> bool:
        return self.config is not None

    @property
    def can_read(self) -> bool:
        """Whether file contents can be read: plain, or encrypted with the key given."""
        return not self.enabled or self.key is not None

    def _need_key(self) -> RepositoryKey:
        if self.key is None:
            raise EncryptionKeyNeeded(f"repository {self.url} is encrypted: give its passphrase "
                                      "(--repo-passphrase or $BACKUP_REPO_PASSPHRASE) or key (--repo-key-file)")
        return self.key

    def seal(self, raw: BinaryIO, context: bytes = b"") -> BinaryIO:
        """The writer a backup file goes through before reaching storage (close it to finish).
        `context` (the file's backup id and name) is authenticated with every chunk, so the file
        only decrypts where it was written."""
        return EncryptingWriter(raw, self._need_key(), context=context) if self.enabled else raw

    def unseal(self, raw: BinaryIO, name: str, context: bytes = b"") -> BinaryIO:
        """The reader of a stored backup file: decrypting and authenticating when encrypted."""
        return DecryptingReader(raw, self._need_key(), name=name, context=context) if self.enabled else raw


PLAIN = Encryption()


def _encrypted_backup_without_config(repo) -> str | None:
    """The newest committed backup, if its manifest says it is encrypted (then the repository's
    crypto.json was lost, not never made). A repository is encrypted as a whole: one manifest
    tells."""
    for backup_id in reversed(repo.backup_ids()):
        try:
            manifest = repo.read_manifest(backup_id)
        except IntegrityError:
            continue
        if manifest is not None:
            return backup_id if manifest.encryption is not None else None
    return None


def open_encryption(repo, *, passphrase: str | None = None, raw_key: bytes | None = None, create: bool = False,
                    algorithm: str = "aes-256-gcm") -> Encryption:
    """The repository's encryption as it is: encrypted if it has a crypto.json (the key is checked
    now: a wrong key says so before anything is read or written), plain otherwise. With `create`,
    a plain repository without backups becomes encrypted."""
    data = repo.read_root(CONFIG_NAME)
    if data is None:
        lost = _encrypted_backup_without_config(repo)
        if lost is not None:
            raise IntegrityError(
                f"{repo.url}/{CONFIG_NAME} is missing, but backup {lost} of this repository is encrypted: put "
                f"{CONFIG_NAME} back (the \"encryption\" object of any of its manifests, {repo.url}/{lost}/s3db.json, "
                "is a copy of it). Do not pass --encrypt: a new key cannot read the existing backups")
        if not create:
            if passphrase or raw_key:
                raise UsageError(f"repository {repo.url} is not encrypted; pass --encrypt to encrypt a new repository")
            return PLAIN
        if repo.backup_ids():
            raise UsageError(f"repository {repo.url} already holds unencrypted backups; encrypt a new repository")
        config, key = RepositoryKey.create(passphrase=passphrase, raw_key=raw_key, algorithm=algorithm)
        if repo.create_root(CONFIG_NAME, orjson.dumps(config, option=orjson.OPT_INDENT_2)):
            return Encryption(config, key, repo.url)
        data = repo.read_root(CONFIG_NAME)  # someone else created it just now: use theirs
    try:
        config = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IntegrityError(f"{repo.url}/{CONFIG_NAME}: not valid JSON ({exc}); restore it from a copy "
                             "(every manifest of the repository repeats it under \"encryption\")") from None
    key = RepositoryKey.open(config, passphrase=passphrase, raw_key=raw_key) if (passphrase or raw_key) else None
    return Encryption(config, key, repo.url)
