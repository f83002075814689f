"""The time and memory tables of tests/unit/slurm/rules_tables.py, against the real sbatch.

Each row is submitted held (``sbatch -H``) and what slurmctld stored is read back with
``scontrol show job``; a "reject" row must make sbatch fail. The jobs are cancelled.
"""

from __future__ import annotations

import re

import pytest

from slurmopt.slurm import fields
from tests.slurm.conftest import JobTracker, slurm_cmd
from tests.unit.slurm.rules_tables import CONSTRAINT_ON_A100, MEM_OPTION, TIME_OPTION


def _submit(jobs: JobTracker, option: str) -> int | None:
    res = slurm_cmd(["sbatch", "--parsable", "-H", option, "--wrap", "true"])
    if res.returncode != 0:
        assert "Invalid" in res.stderr, res.stderr
        return None
    return jobs.track(int(res.stdout.strip().split(";")[0]))


def _show(job_id: int, key: str) -> str:
    res = slurm_cmd(["scontrol", "-o", "show", "job", str(job_id)])
    m = re.search(rf"\b{key}=(\S+)", res.stdout)
    assert m, res.stdout
    return m.group(1)


@pytest.mark.parametrize(("value", "expected"), TIME_OPTION)
def test_time_table_matches_sbatch(
    jobs: JobTracker, value: str, expected: int | str | None
) -> None:
    job = _submit(jobs, f"--time={value}")
    if expected == "reject":
        assert job is None
        return
    assert job is not None
    assert fields.parse_duration(_show(job, "TimeLimit")) == expected


@pytest.mark.parametrize(("value", "expected"), MEM_OPTION)
def test_mem_table_matches_sbatch(jobs: JobTracker, value: str, expected: int | str) -> None:
    job = _submit(jobs, f"--mem={value}")
    if expected == "reject":
        assert job is None
        return
    assert job is not None
    assert (fields.parse_mem_mb(_show(job, "MinMemoryNode")) or 0) == expected


@pytest.mark.parametrize(("expr", "ok"), [r for r in CONSTRAINT_ON_A100 if r[1] is not None])
def test_constraint_table_matches_slurmctld(expr: str, ok: bool) -> None:
    res = slurm_cmd(["sbatch", "--test-only", "-p", "a100", "-C", expr, "--wrap", "true"])
    out = res.stdout + res.stderr
    assert ("to start" in out) is ok, out
    if not ok:
        assert "Requested node configuration is not available" in out, out
