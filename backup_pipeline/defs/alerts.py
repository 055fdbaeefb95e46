"""Alerting: a missed or failed nightly backup must not go unnoticed.

- `backup_run_failed`: a run-failure sensor over the code location's jobs; it logs the failure
  and, when `$BACKUP_ALERT_WEBHOOK` is set, posts it there as JSON (`{"text": ...}`, what Slack
  and most chat webhooks take). A webhook that fails is logged, never raised.
- Freshness: `backup_manifest` (the committed backup) must have been materialized within the 24 h
  before 06:00 UTC each day (the schedule runs at 02:00): a missed night shows on the asset as not
  fresh (a FreshnessPolicy on its spec, Dagster's current form of freshness checks).
"""


import json
from datetime import timedelta
import os
import urllib.request

import dagster as dg

WEBHOOK_ENV = "BACKUP_ALERT_WEBHOOK"
FRESHNESS_DEADLINE = "0 6 * * *"


def post_alert(url: str, text: str) -> None:
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@dg.run_failure_sensor(name="backup_run_failed", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Logs every failed run of this code location, and posts it to "
                                   f"${WEBHOOK_ENV} when set.")
def backup_run_failed(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    text = (f"backup_pipeline: run {run.run_id} of {run.job_name}"
            + (f" for partition {partition}" if partition else "")
            + f" failed: {context.failure_event.message}")
    context.log.error(text)
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        try:
            post_alert(url, text)
        except Exception as exc:  # noqa: BLE001 - an alert that cannot be sent must not hide the failure
            context.log.warning(f"could not post the alert to ${WEBHOOK_ENV}: {exc}")


# The current Dagster way (no sensor, no check to define): the UI marks the asset stale/failed.
MANIFEST_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron=FRESHNESS_DEADLINE, lower_bound_delta=timedelta(hours=24))
