"""``sacct`` on the real testbed: no slurmdbd, so the 'no accounting' path must hold."""

from __future__ import annotations

import time

from slurmopt.slurm.backend import CliBackend
from slurmopt.slurm.runner import Runner


def test_testbed_has_no_accounting_and_nothing_is_guessed(slurm_env: dict[str, str]) -> None:
    assert CliBackend(Runner(slurm_env)).accounting(int(time.time()) - 86400) is None
