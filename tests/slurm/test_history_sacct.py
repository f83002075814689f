"""``sacct`` on the real testbed: no slurmdbd, so the 'no accounting' path must hold."""

from __future__ import annotations

import time

from slurmopt.history.sacct import fetch_sacct
from slurmopt.slurm.runner import Runner


def test_testbed_has_no_accounting_and_nothing_is_guessed(slurm_env: dict[str, str]) -> None:
    text = fetch_sacct(Runner(slurm_env), int(time.time()) - 86400)
    assert text is None
