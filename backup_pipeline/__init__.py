"""backup_pipeline: back up and restore s3db.js databases, orchestrated by Dagster."""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Backups":  # lazy, so `import backup_pipeline.store` stays light
        from .api import Backups

        return Backups
    raise AttributeError(name)
