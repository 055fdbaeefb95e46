"""The Python API that the CLI, Dagster and notebooks all call.

    from backup_pipeline import Backups
    b = Backups(source="file:///data/db", repo="./backups")
    m = b.backup("full")                      # or "incremental", resources=[...], exclude=[...]
    b.list(); b.status(m["id"]); b.verify(m["id"])
    b.restore(m["id"], target="file:///data/restored", mode="safe", dry_run=True)
"""

from __future__ import annotations

from .engine.backup import BackupRequest, BackupRun, source_identity
from .engine.catalog import BackupInfo, complete_manifests, describe_backup, list_backups
from .engine.progress import Progress
from .engine.restore import RestoreReport, RestoreRun
from .engine.verify import VerifyReport, verify_backup
from .errors import NotFound
from .repository import Repository, open_repository
from .store import Store, open_store


class Backups:
    def __init__(self, source: str | Store | None = None, repo: str | list[str] | Repository = "backups",
                 passphrase: str | None = None, *, repo_passphrase: str | None = None, encrypt: bool = False,
                 lock_wait: float = 0.0, lock_ttl: float = 60.0):
        """source: s3db.js connection string (or a Store); repo: folder, s3://bucket/prefix, a list
        of them (multi, strategy all) or a Repository; passphrase: the s3db.js secrets passphrase;
        repo_passphrase: the repository encryption passphrase (encrypt=True encrypts a new one)."""
        self._source = source
        self._store: Store | None = source if (source is not None and not isinstance(source, str)) else None
        if isinstance(repo, (str, list)):
            repo = open_repository(repo, passphrase=repo_passphrase, encrypt=encrypt)
        self.repo: Repository = repo
        self.passphrase = passphrase
        self.lock_wait, self.lock_ttl = lock_wait, lock_ttl

    @property
    def store(self) -> Store:
        if self._store is None:
            if self._source is None:
                raise NotFound("no source database given (source=CONN)")
            self._store = open_store(self._source)
        return self._store

    def close(self) -> None:
        if self._store is not None and isinstance(self._source, str):
            self._store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- backups -------------------------------------------------------------------------
    def latest(self) -> dict | None:
        """The newest committed backup of this source: the parent of the next incremental."""
        manifests = complete_manifests(self.repo, source_identity(self.store))
        return manifests[-1] if manifests else None

    def backup(self, type: str = "full", **kwargs) -> dict:
        """Back up the source: type full or incremental; resources/exclude select resources;
        compression gzip|zstd|brotli|none; verify re-reads before committing. Holds the
        repository's backup lease for this source while it runs."""
        return self._backup_locked(type, **kwargs)

    def _backup_unlocked(self, type: str = "full", *, resources: list[str] | None = None, exclude: list[str] | None = None,
               compression: str = "gzip", verify: bool = True, decrypt_secrets: bool = False,
               skip_corrupt: bool = False, full_if_no_parent: bool = False, progress: Progress | None = None,
               backup_id: str | None = None, parquet: bool = False, workers: int | None = None) -> dict:
        if type not in ("full", "incremental"):
            from .errors import UsageError

            raise UsageError(f"unknown backup type {type!r}; choose full or incremental")
        parent = None
        if type == "incremental":
            parent = self.latest()
            if parent is None:
                if not full_if_no_parent:
                    raise NotFound(
                        f"no committed backup of {self.store.url} in {self.repo.url} to be the parent of an "
                        "incremental; run a full backup first (or pass --full-if-no-parent)"
                    )
                type = "full"
        request = BackupRequest(
            type=type, resources=resources, exclude=exclude, compression=compression, verify=verify,
            passphrase=self.passphrase, decrypt_secrets=decrypt_secrets, skip_corrupt=skip_corrupt,
            backup_id=backup_id, parquet=parquet, workers=workers,
        )
        return BackupRun(self.store, self.repo, request, progress, parent=parent).run()

    def _backup_locked(self, *args, **kwargs) -> dict:
        """One writer per repository and source: the parent is chosen under the lease."""
        from .repository.lock import acquire

        with acquire(self.repo, "backup", source_identity(self.store), ttl=self.lock_ttl, wait=self.lock_wait):
            return self._backup_unlocked(*args, **kwargs)

    def list(self) -> list[BackupInfo]:
        return list_backups(self.repo)

    def status(self, backup_id: str) -> BackupInfo:
        return describe_backup(self.repo, backup_id)

    def verify(self, backup_id: str, progress: Progress | None = None) -> VerifyReport:
        return verify_backup(self.repo, backup_id, progress)

    def restore(self, backup_id: str, target: str | Store, *, resources: list[str] | None = None,
                mode: str = "safe", dry_run: bool = False, progress: Progress | None = None) -> RestoreReport:
        from .repository.lock import StoreLeaseBackend, acquire

        target_store = open_store(target, create=True) if isinstance(target, str) else target
        try:
            run = RestoreRun(self.repo, backup_id, target_store, resources=resources, mode=mode,
                             dry_run=dry_run, progress=progress)
            if dry_run:
                return run.run()
            with acquire(StoreLeaseBackend(target_store), "restore", target_store.url, ttl=self.lock_ttl,
                         wait=self.lock_wait):
                return run.run()
        finally:
            if isinstance(target, str):
                target_store.close()

    # -- retention -----------------------------------------------------------------------
    def cleanup(self, policy: "RetentionPolicy", *, apply: bool = False, now=None,
                progress: Progress | None = None) -> list["Decision"]:
        """Decide, for every backup, keep or remove and why (engine/retention.py); a dry run
        unless `apply`, which deletes the "remove" ones, children before parents."""
        from .engine.cleanup import apply_cleanup, plan_cleanup

        decisions = plan_cleanup(self.repo, policy, now)
        if apply:
            apply_cleanup(self.repo, decisions, progress)
        return decisions
