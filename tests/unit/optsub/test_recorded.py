"""Recorded real ``sbatch --parsable`` outputs (22.05, 24.11, 26.05): optsub finds the job id.

The files are copies, in ``tests/data/slurm-recorded/``, of ``commands.log`` and
``sbatch_parsable_j*.txt`` from ``../shared/slurm-recorded/<version>/``.

(``commands.log`` there lost the shell quoting of the arguments, so the
command lines themselves are not replayed through the parser.)
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from slurmopt.slurm.sbatch_exec import job_id_from

RECORDED = Path(__file__).resolve().parents[2] / "data" / "slurm-recorded"
VERSIONS = ["22.05", "24.11", "26.05"]


def _sbatch_lines(version: str) -> list[tuple[list[str], Path]]:
    out = []
    for line in (RECORDED / version / "commands.log").read_text().splitlines():
        if line.startswith("+ sbatch ") and " > " in line:
            cmd, _, target = line[2:].rpartition(" > ")
            out.append((shlex.split(cmd)[1:], RECORDED / version / target.strip()))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_parsable_outputs_give_the_job_id(version: str) -> None:
    calls = _sbatch_lines(version)
    assert len(calls) >= 8
    ids = [job_id_from(path.read_bytes()) for _, path in calls]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(set(ids)) == len(ids)
