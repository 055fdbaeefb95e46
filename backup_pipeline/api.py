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
    def __init__(self, source: str | Store | None = None, repo: str | Repository = "backups",
                 passphrase: str | None = None):
        self._source = source
        self._store: Store | None = source if (source is not None and not isinstance(source, str)) else None
        self.repo: Repository = open_repository(repo) if isinstance(repo, str) else repo
        self.passphrase = passphrase

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

    def backup(self, type: str = "full", *, resources: list[str] | None = None, exclude: list[str] | None = None,
               compression: str = "gzip", verify: bool = True, decrypt_secrets: bool = False,
               skip_corrupt: bool = False, full_if_no_parent: bool = False, progress: Progress | None = None,
               backup_id: str | None = None) -> dict:
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
            backup_id=backup_id,
        )
        return BackupRun(self.store, self.repo, request, progress, parent=parent).run()

    def list(self) -> list[BackupInfo]:
        return list_backups(self.repo)

    def status(self, backup_id: str) -> BackupInfo:
        return describe_backup(self.repo, backup_id)

    def verify(self, backup_id: str, progress: Progress | None = None) -> VerifyReport:
        return verify_backup(self.repo, backup_id, progress)

    def restore(self, backup_id: str, target: str | Store, *, resources: list[str] | None = None,
                mode: str = "safe", dry_run: bool = False, progress: Progress | None = None) -> RestoreReport:
        target_store = open_store(target, create=True) if isinstance(target, str) else target
        try:
            return RestoreRun(self.repo, backup_id, target_store, resources=resources, mode=mode,
                              dry_run=dry_run, progress=progress).run()
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
