"""End to end through the real Dagster front end: `dagster dev -w dagster_workspace.yaml` serves the code location,
a run of `s3db_backup_job` for one daily partition is launched through GraphQL (as the UI's "Materialize" does),
GraphQL then shows every resource asset materialized for that partition with its checks passed, and the asset
catalog rendered by headless Chromium lists every resource. Screenshot: artifacts/dagster-ui.png.

Needs Debian's /usr/bin/chromium and playwright-core in .e2e/ (both from scripts/install-chromium, which
scripts/bootstrap runs); the test fails, never skips, when they are missing. Takes about 2-3 minutes: the default
multiprocess executor starts one process per step (~21 steps).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from s3db_fixtures import FS_DB, expected_records

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
E2E_DIR = Path(os.environ.get("E2E_DIR", ROOT / ".e2e"))
ARTIFACTS = ROOT / "artifacts"
SCREENSHOT = ARTIFACTS / "dagster-ui.png"

JOB = "s3db_backup_job"
GROUP = "s3db_backup"
DAY = "2026-11-22"
MANIFEST = "backup_manifest"
from backup_pipeline.defs.checks import DRILL_CHECK, MANIFEST_CHECK, VERIFY_CHECK, resource_check_names  # noqa: E402
from backup_pipeline.repository import FilesystemRepository  # noqa: E402
CHECKS = set(resource_check_names(parquet=False))  # no Parquet check: the demo writes no mirror

SERVE_DEADLINE = 120  # dagster dev answers GraphQL with the location loaded (~10-20 s measured)
RUN_DEADLINE = 300  # the run itself (one step, in the run's process: seconds)
BROWSER_DEADLINE = 120
STOP_DEADLINE = 60

# Loopback only: never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

LAUNCH_RUN = """
mutation LaunchBackup($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
  }
}
"""

WORKSPACE = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename
          ... on RepositoryLocation { name repositories { name pipelines { name } } }
          ... on PythonError { message stack } } } }
    ... on PythonError { message } } }
"""

LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on PresetNotFoundError { message }
  }
}
"""

BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) { __typename
    ... on PartitionBackfill { status runs(limit: 10) { runId status tags { key value } } }
    ... on PythonError { message } } }
"""

RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) { __typename
    ... on Run { status tags { key value } stepStats { stepKey status } }
    ... on RunNotFoundError { message }
    ... on PythonError { message } } }
"""

GROUP_ASSETS = """
query GroupAssets($group: AssetGroupSelector!, $partition: String!) {
  assetNodes(group: $group) {
    assetKey { path }
    groupName
    isPartitioned
    assetMaterializations(partitions: [$partition]) { partition runId }
    assetChecksOrError { __typename
      ... on AssetChecks { checks { name blocking
          executionForLatestMaterialization { status partition runId } } } }
  }
}
"""

# Drives /usr/bin/chromium through playwright-core (argv: url, resource names, screenshot, profile, chromium).
BROWSER_JS = r"""
const { chromium } = require('playwright-core');
const [url, namesJson, shot, profile, exe, checksUrl] = process.argv.slice(2);
const names = JSON.parse(namesJson);
(async () => {
  const ctx = await chromium.launchPersistentContext(profile, {   // a new empty --user-data-dir
    executablePath: exe, headless: true, viewport: { width: 1600, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-proxy-server'],
  });
  const blocked = [];
  try {
    await ctx.route('**/*', (route) => {  // never leave 127.0.0.1
      const u = new URL(route.request().url());
      if (u.hostname === '127.0.0.1' || u.protocol === 'data:' || u.protocol === 'blob:') return route.continue();
      blocked.push(u.origin);
      return route.abort();
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60000 });
    // the catalog has rendered a row for every resource asset
    await page.waitForFunction((ns) => ns.every((n) => document.body.innerText.includes(`s3db / ${n}`)),
                               names, { timeout: 60000, polling: 250 });
    // first visit: the "Join the Dagster community" modal covers the page
    const skip = page.getByRole('button', { name: 'Skip', exact: true });
    let modal = false;
    try {
      await skip.waitFor({ state: 'visible', timeout: 10000 });
      modal = true;
    } catch (e) { /* no modal */ }
    if (modal) {
      await skip.click();
      await skip.waitFor({ state: 'hidden', timeout: 10000 });
    }
    try { await page.waitForLoadState('networkidle', { timeout: 10000 }); } catch (e) { /* live polling */ }
    await page.screenshot({ path: shot, fullPage: true });
    const text = await page.evaluate(() => document.body.innerText);
    // the manifest asset's checks tab shows its check, evaluated
    await page.goto(checksUrl, { waitUntil: 'domcontentloaded', timeout: 60000 });
    await page.waitForFunction(() => document.body.innerText.includes('backup_verifies'), null,
                               { timeout: 60000, polling: 250 });
    try { await page.waitForLoadState('networkidle', { timeout: 10000 }); } catch (e) { /* live polling */ }
    const checksText = await page.evaluate(() => document.body.innerText);
    process.stdout.write(JSON.stringify({ modal, text, checksText, blocked: [...new Set(blocked)] }));
  } finally {
    await ctx.close();
  }
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(log: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _graphql(base: str, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}})
                                 .encode(), headers={"Content-Type": "application/json"})
    with _HTTP.open(req, timeout=timeout) as resp:
        body = json.loads(resp.read())
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _child_setup() -> None:
    # Own process group (stopped as a whole), and SIGINT/SIGTERM not inherited as ignored: dagster maps SIGTERM
    # to the SIGINT disposition, so under a shell that ignores SIGINT (background jobs) SIGTERM would be ignored.
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _live_group_members(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            pids.append(int(stat.parent.name))
    return pids


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (dagster dev, webserver, daemon, code servers, run workers), SIGKILL leftovers."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 15
    while _live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)  # poll (deadline above) for the server group to exit
    if _live_group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _live_group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)  # a killed process leaves /proc only once the kernel has torn it down
    proc.wait(timeout=10)


def _wait_until_served(base: str, proc: subprocess.Popen, log: Path) -> tuple[str, str]:
    """Polls until GraphQL answers with the code location loaded; returns (location name, repository name)."""
    deadline = time.monotonic() + SERVE_DEADLINE
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dagster dev exited with {proc.returncode}:\n{_log_tail(log)}"
        try:
            ws = _graphql(base, WORKSPACE, timeout=5)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as exc:
            last = exc
        else:
            last = ws
            for entry in ws.get("locationEntries") or []:
                loc = entry.get("locationOrLoadError") or {}
                assert loc.get("__typename") != "PythonError", f"code location failed to load: {loc.get('message')}"
                if entry["loadStatus"] == "LOADED" and loc.get("__typename") == "RepositoryLocation":
                    for repo in loc["repositories"]:
                        if JOB in {p["name"] for p in repo["pipelines"]}:
                            return loc["name"], repo["name"]
        time.sleep(0.5)  # poll interval: GraphQL has no "wait until loaded" call
    raise AssertionError(f"dagster dev not serving {JOB} after {SERVE_DEADLINE}s (last: {last}):\n{_log_tail(log)}")


def _wait_for_backfill(base: str, backfill_id: str, log: Path) -> dict:
    deadline = time.monotonic() + RUN_DEADLINE
    backfill = None
    while time.monotonic() < deadline:
        backfill = _graphql(base, BACKFILL_STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}:
            return backfill
        time.sleep(1)  # poll interval: the daemon launches and finishes the run on its own
    raise AssertionError(f"backfill {backfill_id} not finished after {RUN_DEADLINE}s: {backfill}\n{_log_tail(log)}")


def _wait_for_run(base: str, run_id: str, log: Path) -> dict:
    deadline = time.monotonic() + RUN_DEADLINE
    run = None
    while time.monotonic() < deadline:
        run = _graphql(base, RUN_STATUS, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            return run
        time.sleep(1)  # poll interval: GraphQL has no "wait for run" call
    raise AssertionError(f"run {run_id} not finished after {RUN_DEADLINE}s: {run}\n{_log_tail(log)}")


def _require_browser() -> None:
    # Fail (never skip) when the browser tooling is missing.
    assert CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing: run scripts/install-chromium"
    assert (E2E_DIR / "node_modules" / "playwright-core" / "package.json").is_file(), \
        f"playwright-core missing in {E2E_DIR}: run scripts/install-chromium"
    assert shutil.which("node"), "node not found on PATH"


def test_backup_run_from_dagster_dev_shows_in_graphql_and_ui(tmp_path):
    _require_browser()
    resources = sorted(expected_records("fs"))
    assert resources, "no resources in the fs fixture"

    src = shutil.copytree(FS_DB, tmp_path / "source")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    log = tmp_path / "dagster-dev.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "S3DB_", "BACKUP_REPO"))}
    env.update(DAGSTER_HOME=str(home), S3DB_SOURCE=f"file://{src}", BACKUP_REPO=str(tmp_path / "repo"),
               PYTHONWARNINGS="ignore", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    dagster = Path(sys.executable).with_name("dagster")

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(dagster), "dev", "-w", "dagster_workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_child_setup,
        )
    try:
        location, repository = _wait_until_served(base, proc, log)

        # -- launch the partitioned run, as the UI does for one partition
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": JOB},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
        }
        launched = _graphql(base, LAUNCH_RUN, {"executionParams": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        run = _wait_for_run(base, run_id, log)
        assert run["status"] == "SUCCESS", f"{run}\n{_log_tail(log)}"
        assert {"key": "dagster/partition", "value": DAY} in run["tags"]

        # -- the same partition again: committed already, so a green no-op that re-runs its checks
        again = _graphql(base, LAUNCH_RUN, {"executionParams": params})["launchRun"]
        assert again["__typename"] == "LaunchRunSuccess", again
        rerun_id = again["run"]["runId"]
        rerun = _wait_for_run(base, rerun_id, log)
        assert rerun["status"] == "SUCCESS", f"{rerun}\n{_log_tail(log)}"

        # -- every asset materialized for the partition by both runs, its blocking checks passed
        # (backup_file_valid per resource; backup_verifies on the manifest, which also shows the
        # weekly drill's and the verify job's checks, not run by a backup)
        nodes = _graphql(base, GROUP_ASSETS, {"partition": DAY, "group": {
            "groupName": GROUP, "repositoryName": repository, "repositoryLocationName": location}})["assetNodes"]
        by_name = {tuple(n["assetKey"]["path"]): n for n in nodes}
        assert set(by_name) == {("s3db", r) for r in resources} | {("s3db", MANIFEST)}
        for key, node in by_name.items():
            assert node["groupName"] == GROUP and node["isPartitioned"], key
            assert sorted(m["runId"] for m in node["assetMaterializations"]) == sorted([run_id, rerun_id]), \
                (key, node["assetMaterializations"])
            assert {m["partition"] for m in node["assetMaterializations"]} == {DAY}
            checks = node["assetChecksOrError"]
            assert checks["__typename"] == "AssetChecks", (key, checks)
            expected = {MANIFEST_CHECK, DRILL_CHECK, VERIFY_CHECK} if key[-1] == MANIFEST else CHECKS
            assert {c["name"] for c in checks["checks"]} == expected, key
            for check in checks["checks"]:
                if check["name"] in (DRILL_CHECK, VERIFY_CHECK):
                    assert not check["blocking"], check  # run by drill_job and verify_job, not by a backup
                    continue
                execution = check["executionForLatestMaterialization"]
                assert check["blocking"], (key, check)
                assert execution["status"] == "SUCCEEDED" and execution["runId"] == rerun_id, (key, check)

        # -- a 3-day backfill through the daemon: one run over the days (BackfillPolicy.single_run),
        # done oldest first, so each day's incremental has the day before as committed parent
        days = ["2026-11-23", "2026-11-24", "2026-11-25"]
        launched = _graphql(base, LAUNCH_BACKFILL, {"backfillParams": {
            "partitionNames": days, "fromFailure": False,
            "assetSelection": [{"path": ["s3db", r]} for r in resources] + [{"path": ["s3db", MANIFEST]}]}})
        launched = launched["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill = _wait_for_backfill(base, launched["backfillId"], log)
        assert backfill["status"].startswith("COMPLETED") and backfill["status"] != "COMPLETED_FAILED", \
            f"{backfill}\n{_log_tail(log)}"
        assert len(backfill["runs"]) == 1 and backfill["runs"][0]["status"] == "SUCCESS", backfill
        repo = FilesystemRepository(tmp_path / "repo")
        manifests = sorted((repo.read_manifest(b) for b in repo.backup_ids()), key=lambda m: m.started_at)
        assert [(m.partition, m.type) for m in manifests] == [(DAY, "full")] + [(d, "incremental") for d in days]
        assert all(m.parent == prev.id for prev, m in zip(manifests, manifests[1:]))

        # -- the asset catalog in headless Chromium lists them all
        ARTIFACTS.mkdir(exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        script = tmp_path / "browse.cjs"
        script.write_text(BROWSER_JS)
        node_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        node_env["NODE_PATH"] = str(E2E_DIR / "node_modules")
        browsed = subprocess.run(
            ["node", str(script), f"{base}/assets", json.dumps(resources + [MANIFEST]), str(SCREENSHOT),
             str(tmp_path / "chromium-profile"), str(CHROMIUM), f"{base}/assets/s3db/{MANIFEST}?view=checks"],
            env=node_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=BROWSER_DEADLINE,
        )
        assert browsed.returncode == 0, f"browser failed:\n{browsed.stderr[-4000:]}\n{browsed.stdout[-2000:]}"
        page = json.loads(browsed.stdout)
        text = page["text"]
        for name in resources + [MANIFEST]:
            assert f"s3db / {name}" in text, f"{name} not in the rendered catalog:\n{text[:3000]}"
        assert GROUP in text and location in text
        assert MANIFEST_CHECK in page["checksText"], page["checksText"][:3000]  # the manifest's check, shown
        assert "Join the Dagster community" not in text, "the community modal still covers the page"
        png = SCREENSHOT.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, len(png)
    finally:
        _stop(proc)
    assert not _live_group_members(proc.pid), "dagster dev left processes behind"
