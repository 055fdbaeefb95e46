"""backup_pipeline: back up and restore s3db.js databases, orchestrated by Dagster."""

__version__ = "0.1.0"
