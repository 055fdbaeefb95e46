"""Real S3-compatible servers on 127.0.0.1 for the tests and benchmarks: moto and SeaweedFS.

Each runs as its own process (moto in-process would share our GIL and not cross process
boundaries). Readiness is polled over HTTP with a deadline, never slept on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret"


@dataclass
class S3Server:
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    workdir: Path | None = None

    def boto_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=64),
        )

    def connection_string(self, bucket: str, prefix: str = "") -> str:
        host = self.endpoint.split("://", 1)[1]
        tail = f"/{prefix}" if prefix else ""
        return f"http://{self.access_key}:{self.secret_key}@{host}/{bucket}{tail}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _free_port(avoid: set[int] | None = None, need_offset: int | None = None) -> int:
    """A free loopback port (and port+offset free too, for SeaweedFS's gRPC ports)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if avoid and port in avoid:
            continue
        if need_offset:
            if port + need_offset > 65535:
                continue
            with socket.socket() as s2:
                try:
                    s2.bind(("127.0.0.1", port + need_offset))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port pair found on 127.0.0.1")


def _wait_http(url: str, process: subprocess.Popen, what: str, deadline_s: float = 60.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting:\n{detail}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            time.sleep(0.05)  # poll interval while waiting for a port to open, not synchronisation
    raise RuntimeError(f"{what} did not answer on {url} within {deadline_s}s: {last}")


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; run `uv sync` to install the dev dependencies")
    return found


def start_moto() -> S3Server:
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="moto-"))
    log = workdir / "moto.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint + "/moto-api/", proc, "moto_server", log=log)
    return S3Server("moto", endpoint, ACCESS_KEY, SECRET_KEY, proc, workdir)


def start_seaweedfs() -> S3Server:
    workdir = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
    data = workdir / "data"
    data.mkdir()
    used: set[int] = set()
    ports = {}
    for name in ("s3", "master", "volume", "filer"):
        p = _free_port(avoid=used, need_offset=10000)
        used.update({p, p + 10000})
        ports[name] = p
    config = workdir / "s3.json"
    config.write_text(json.dumps({
        "identities": [{
            "name": "admin",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]
    }))
    log = workdir / "weed.log"
    cmd = [
        _bin("weed"), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", f"-s3.port={ports['s3']}", f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}", "-webdav=false",
        "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
        "-s3.allowDeleteBucketNotEmpty=false", "-s3.autoCreateBucket=false",
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=workdir,
                            env=dict(os.environ, TMPDIR=str(workdir)))
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    server = S3Server("seaweedfs", endpoint, ACCESS_KEY, SECRET_KEY, proc, workdir)
    try:
        _wait_http(endpoint + "/", proc, "weed mini", log=log)
        # The S3 port opens before the filer is ready: wait until a bucket can be made.
        client = server.boto_client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket="readiness-probe")
                client.delete_bucket(Bucket="readiness-probe")
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)  # poll interval while the filer starts
    except BaseException:
        server.stop()
        raise
    return server


def start(name: str) -> S3Server:
    return {"moto": start_moto, "seaweedfs": start_seaweedfs}[name]()
