"""S3 requests in flight sized from the measured round trip (Little's law), so a store far away
keeps enough requests moving: checked through a real 20 ms delay on loopback."""

from __future__ import annotations

import multiprocessing
import socket

from backup_pipeline.store import RawObject, open_store
from backup_pipeline.store import s3 as s3_store
from delayproxy import delay_proxy


def test_in_flight_follows_the_round_trip(monkeypatch):
    assert s3_store.in_flight_for(None) == 32  # nothing timed yet
    assert s3_store.in_flight_for(0.0005) == 32  # loopback: the floor
    assert s3_store.in_flight_for(0.020) == 128  # 20 ms x 6,400 objects a second
    assert s3_store.in_flight_for(0.5) == 256  # the ceiling
    monkeypatch.setattr(s3_store, "IN_FLIGHT", 8)
    assert s3_store.in_flight_for(0.020) == 8  # pinned


def test_a_store_20_ms_away_keeps_more_requests_in_flight(moto_server, bucket_name):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    upstream = int(moto_server.endpoint.rsplit(":", 1)[1])
    proxy = spawn.Process(target=delay_proxy, args=(port, upstream, 0.010, ready), daemon=True)
    proxy.start()
    try:
        assert ready.wait(30)
        far = open_store(f"http://{moto_server.access_key}:{moto_server.secret_key}@127.0.0.1:{port}/{bucket_name}")
        assert far.in_flight == 32  # nothing measured yet
        objs = [RawObject(key=f"resource=items/data/id=i{i:04d}", metadata={"0": str(i)}, content_type=None, body=b"")
                for i in range(300)]
        far.put_many(objs)
        assert far.round_trip >= 0.020 and far.in_flight >= 128
        got = list(far.get_many(o.key for o in objs))
        assert [g.metadata["0"] for g in got] == [str(i) for i in range(300)]  # in order, all there
        far.close()
    finally:
        proxy.terminate()
        proxy.join()
