"""The daily backup job as Dagster's multiprocess executor rebuilds it in each step's process
(dagster.reconstructable): configured by the environment, as `dagster dev` would be."""

from backup_pipeline.definitions import build_definitions


def sharded_backup_job():
    return build_definitions().resolve_job_def("s3db_backup_job")
