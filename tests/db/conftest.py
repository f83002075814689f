"""Database test fixtures: every test runs against SQLite, and PostgreSQL when available.

PostgreSQL: ``SLURMOPT_TEST_PG_URL`` (``scripts/pg up`` prints one). Without it
the PostgreSQL variants skip, except under ``CI=true`` where they fail: CI must
test both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from slurmopt.history import db
from slurmopt.model import (
    Job,
    JobRequest,
    JobState,
    Node,
    NodeState,
    Partition,
    Snapshot,
)

PG_ENV = "SLURMOPT_TEST_PG_URL"


def _pg_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {PG_ENV} is not set: run scripts/pg up and export it")
        pytest.skip(f"{PG_ENV} not set (scripts/pg up prints a URL)")
    return url


def reset_pg(url: str) -> None:
    """Drop everything in the test database's public schema."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL (no schema yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    url = _pg_url()
    reset_pg(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database upgraded to the newest revision."""
    eng = db.make_engine(db_url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


# -- snapshot builders ------------------------------------------------------------

NODES = (
    Node(
        "gpu-a1",
        NodeState.MIXED,
        cpus=64,
        cpus_alloc=8,
        memory_mb=256000,
        gpus={"a100": 4},
        gpus_used={"a100": 2},
        partitions=("a100",),
    ),
    Node(
        "gpu-h1",
        NodeState.IDLE,
        cpus=64,
        memory_mb=256000,
        gpus={"h100": 4},
        gpus_used={},
        partitions=("h100",),
    ),
    Node(
        "cpu1",
        NodeState.IDLE,
        flags=frozenset({"DRAIN"}),
        cpus=32,
        memory_mb=64000,
        partitions=("cpu",),
    ),
)
PARTITIONS = (
    Partition("a100", nodes=("gpu-a1",)),
    Partition("h100", nodes=("gpu-h1",)),
    Partition("cpu", nodes=("cpu1",), is_default=True),
)


def job(
    job_id: int,
    state: JobState = JobState.PENDING,
    partitions: tuple[str, ...] = ("a100", "h100"),
    *,
    user: str = "alice",
    name: str = "train",
    submit: int = 1000,
    start: int | None = None,
    end: int | None = None,
    gpus_alloc: dict[str, int] | None = None,
) -> Job:
    """A GPU job in ``state``."""
    return Job(
        job_id=job_id,
        name=name,
        user=user,
        state=state,
        partitions=partitions,
        request=JobRequest(gpus_per_node=2, time_limit_s=3600),
        account="proj",
        submit_time=submit,
        start_time=start,
        end_time=end,
        gpus_alloc=gpus_alloc or {},
    )


def snap(at: int, *jobs: Job, cluster: str = "test") -> Snapshot:
    """A snapshot of the three-node cluster with ``jobs``."""
    return Snapshot(
        taken_at=at,
        nodes=NODES,
        partitions=PARTITIONS,
        jobs=tuple(jobs),
        cluster_name=cluster,
        slurm_version="24.11.5",
        source="test",
    )
