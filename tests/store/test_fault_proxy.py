"""The fault-injecting proxy (tests/faultproxy.py) the retry tests stand on: transparent at rate
0 (signatures verify through it, a real backup and restore pass), and each fault is what the
client sees at rate 1."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from backup_pipeline import Backups
from faultproxy import FaultProxy
from s3db_fixtures import copy_fs_db


def _client(proxy: FaultProxy, server):
    return boto3.client("s3", endpoint_url=proxy.endpoint, aws_access_key_id=server.access_key,
                        aws_secret_access_key=server.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}))


def _upstream_port(server) -> int:
    return int(server.endpoint.rsplit(":", 1)[1])


def test_transparent_without_faults(seaweedfs_server, bucket_name, tmp_path):
    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    with FaultProxy(_upstream_port(seaweedfs_server)) as proxy:
        host = proxy.endpoint.split("://", 1)[1]
        target = f"http://{seaweedfs_server.access_key}:{seaweedfs_server.secret_key}@{host}/{bucket_name}/db"
        b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
        m = b.backup("full")
        # SeaweedFS drops empty metadata values (tests/engine/test_restore_trust.py): accepted here
        report = b.restore(m.id, target, accept_empty_metadata_loss=True)  # PUTs, GETs, LISTs, DELETEs through the proxy
        assert sum(p.written for p in report.resources.values()) == 27
        assert Backups(target, str(tmp_path / "repo")).backup("full").totals.records == 27
        assert sum(proxy.counts.values()) == 0


@pytest.mark.parametrize("fault, raised", [("503", "SlowDown"), ("500", "InternalError"),
                                           ("reset", "Connection"), ("cut", None)])
def test_each_fault_reaches_the_client(seaweedfs_server, bucket_name, fault, raised):
    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    seaweedfs_server.boto_client().put_object(Bucket=bucket_name, Key="k", Body=b"x" * 10_000)
    with FaultProxy(_upstream_port(seaweedfs_server), rate=1.0, faults=(fault,), methods=("GET",)) as proxy:
        client = _client(proxy, seaweedfs_server)
        with pytest.raises(Exception, match=raised) as err:
            client.get_object(Bucket=bucket_name, Key="k")["Body"].read()
        if fault == "cut":
            assert "IncompleteRead" in type(err.value).__name__ or "incomplete" in str(err.value).lower() or \
                "ResponseStreamingError" in type(err.value).__name__, repr(err.value)
        assert proxy.counts[f"GET {fault}"] >= 1
        client.put_object(Bucket=bucket_name, Key="k2", Body=b"y")  # other methods pass untouched
        assert proxy.counts.get(f"PUT {fault}", 0) == 0


def test_delay_is_a_late_answer(seaweedfs_server, bucket_name):
    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    with FaultProxy(_upstream_port(seaweedfs_server), rate=1.0, faults=("delay",), delay=0.05) as proxy:
        _client(proxy, seaweedfs_server).put_object(Bucket=bucket_name, Key="k", Body=b"x")
        assert proxy.counts["PUT delay"] == 1
    assert seaweedfs_server.boto_client().get_object(Bucket=bucket_name, Key="k")["Body"].read() == b"x"
