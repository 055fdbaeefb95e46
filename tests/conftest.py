from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers  # noqa: E402
from s3db_fixtures import FIXTURES  # noqa: E402

_bucket_counter = itertools.count()

S3_SERVER_NAMES = ["moto", "seaweedfs"]


def pytest_sessionstart(session):
    if not FIXTURES.is_dir():
        raise pytest.UsageError(
            f"s3db.js fixtures not found at {FIXTURES}; set S3DB_FORMAT_DIR to the s3db-format folder"
        )


@pytest.fixture(scope="session")
def moto_server():
    server = servers.start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server():
    server = servers.start_seaweedfs()
    yield server
    server.stop()


@pytest.fixture(params=S3_SERVER_NAMES)
def s3_server(request):
    """Each S3 test runs once against moto and once against SeaweedFS."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def bucket_name():
    return f"test-bucket-{next(_bucket_counter)}"
