"""Runs the Lua unit tests of plugins/job_submit.lua under lua5.3 (stub `slurm` table)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_job_submit_lua_unit_tests() -> None:
    lua = shutil.which("lua5.3")
    if lua is None:
        if os.environ.get("CI") == "true":
            pytest.fail("lua5.3 is not installed (scripts/test installs it)")
        pytest.skip("lua5.3 not installed")
    env = {k: v for k, v in os.environ.items() if k != "SLURMOPT_ROUTING_FILE"}
    proc = subprocess.run(
        [lua, "plugins/tests/test_job_submit.lua"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("passed, 0 failed"), proc.stdout
    passed = int(proc.stdout.strip().splitlines()[-1].split()[0])
    assert passed >= 50
