"""The embedded default: a local s3db.js database (a copy of the real library's fixture
database, filesystem layout) and a local backup folder, so everything runs with no setup."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_SEED = REPO / "vendor" / "s3db-format" / "fixtures" / "fs-db"
DEFAULT_DEMO_DIR = Path("demo")


def ensure_demo_database(demo_dir: Path = DEFAULT_DEMO_DIR) -> Path:
    """Create demo_dir/db from the seed the first time; later runs keep what is there."""
    db = demo_dir / "db"
    if not (db / "s3db.json").exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(DEMO_SEED, db, dirs_exist_ok=True)
    return db.resolve()


def default_source() -> str:
    """The embedded default: the demo s3db.js database (created on first use)."""
    return f"file://{ensure_demo_database(DEFAULT_DEMO_DIR)}"


def default_repo() -> str:
    return str((DEFAULT_DEMO_DIR / "backups").resolve())
