"""optsub on the real testbed: fail-open paths submit exactly once; the decision explains itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.slurm.conftest import CtldStopped, JobTracker, reachable, wait_for

OPTSUB = [sys.executable, "-c", "from slurmopt.cli.optsub import main; main()"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    env |= {
        "SLURMOPT_SPOOL_DIR": str(tmp_path),
        "SLURMOPT_STATE_CACHE": str(tmp_path / "no-cache.json"),
    }
    return env | extra


def _jobs_named(name: str) -> list[int]:
    res = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%A"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [int(x) for x in res.stdout.split()]


def _submit(
    args: list[str], env: dict[str, str], jobs: JobTracker
) -> tuple[subprocess.CompletedProcess[str], str]:
    name = f"fo-{uuid.uuid4().hex[:8]}"
    wait_for(reachable, timeout=120, interval=1.0)  # the testbed is shared with other suites
    r = subprocess.run(
        [*OPTSUB, "--hold", "-J", name, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for jid in _jobs_named(name):
        jobs.track(jid)
    return r, name


def _assert_once_with_warning(r: subprocess.CompletedProcess[str], name: str) -> None:
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"Submitted batch job \d+\n", r.stdout)
    warnings = [line for line in r.stderr.splitlines() if line.startswith("optsub: warning:")]
    assert len(warnings) == 1, r.stderr
    ids = _jobs_named(name)
    assert len(ids) == 1
    # submitted unchanged: the user's partition list is still there
    show = subprocess.run(
        ["scontrol", "-o", "show", "job", str(ids[0])],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "Partition=a100,h100 " in show


ARGS = ["-p", "a100,h100", "--gres=gpu:a100:1", "-t", "5", "--wrap", "sleep 1"]


def test_corrupt_cache_without_live_read(tmp_path: Path, jobs: JobTracker) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text('{"format": 1, "written_at": 0, "snapshot": {"tru')
    cfg = tmp_path / "c.toml"
    cfg.write_text("[optsub]\nlive_read = false\n")
    env = _env(tmp_path, SLURMOPT_STATE_CACHE=str(cache), SLURMOPT_CONFIG=str(cfg))
    r, name = _submit(ARGS, env, jobs)
    _assert_once_with_warning(r, name)
    assert "unreadable" in r.stderr


def test_unreadable_config(tmp_path: Path, jobs: JobTracker) -> None:
    env = _env(tmp_path, SLURMOPT_CONFIG=str(tmp_path))  # a directory: cannot be read
    r, name = _submit(ARGS, env, jobs)
    _assert_once_with_warning(r, name)
    assert "ConfigError" in r.stderr


def test_optimizer_raising(tmp_path: Path, jobs: JobTracker) -> None:
    r, name = _submit(ARGS, _env(tmp_path, SLURMOPT_OPTSUB_FAULT="optimizer"), jobs)
    _assert_once_with_warning(r, name)


def test_slurmctld_briefly_unreachable(
    tmp_path: Path, jobs: JobTracker, ctld_stopped: CtldStopped
) -> None:
    """slurmctld is down while optsub reads the state; it is back when sbatch runs.

    The real sbatch is wrapped by a script that waits (up to 120 s) for
    ``scontrol ping`` to answer, then execs sbatch: the state read fails for
    real (no controller), the submission happens exactly once, after restart.
    """
    wrapper = tmp_path / "sbatch-when-up"
    wrapper.write_text(
        "#!/bin/sh\nfor i in $(seq 240); do scontrol ping 2>/dev/null | grep -q UP && break;"
        ' sleep 0.5; done\nexec sbatch "$@"\n'
    )
    wrapper.chmod(0o755)
    env = _env(tmp_path, SLURMOPT_SBATCH=str(wrapper))
    # The testbed is shared: another suite may bring slurmctld back while it is
    # meant to be down (then the read succeeds and there is nothing to test).
    for _attempt in range(3):
        name = f"fo-{uuid.uuid4().hex[:8]}"
        with ctld_stopped:
            proc = subprocess.Popen(
                [*OPTSUB, "--hold", "-J", name, *ARGS],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stderr is not None
            first = proc.stderr.readline()  # the warning comes before sbatch runs
        out, err = proc.communicate(timeout=180)
        for jid in _jobs_named(name):
            jobs.track(jid)
        if first.startswith("optsub: warning:"):
            break
        assert len(_jobs_named(name)) == 1  # even then: submitted exactly once
    assert first.startswith("optsub: warning:"), first
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, first + err)
    _assert_once_with_warning(r, name)


@pytest.fixture
def a100_congested(jobs: JobTracker, cluster_spec: object) -> list[int]:
    """Fill every A100 GPU with running jobs."""
    ids = [
        jobs.submit(
            "-p",
            "a100",
            "-N",
            "1",
            "--gres=gpu:a100:4",
            "-t",
            "30",
            "--mem=1G",
            "-J",
            "fill-a100",
            "--wrap",
            "sleep 600",
        )
        for _ in range(3)
    ]

    def running() -> bool:
        res = subprocess.run(
            ["squeue", "-h", "-j", ",".join(map(str, ids)), "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return res.stdout.split().count("RUNNING") == len(ids)

    wait_for(running, timeout=60)
    return ids


def test_multi_partition_job_goes_to_idle_fast_partition_and_explains(
    tmp_path: Path, jobs: JobTracker, a100_congested: list[int]
) -> None:
    name = f"dec-{uuid.uuid4().hex[:8]}"
    wait_for(reachable, timeout=120, interval=1.0)
    cfg = tmp_path / "optsub.toml"
    cfg.write_text("[optsub]\ndecision_timeout_s = 30.0\n")
    res = subprocess.run(
        [
            *OPTSUB,
            "--optsub-explain",
            "--hold",
            "-J",
            name,
            "-p",
            "a100,h100",
            "--gres=gpu:a100:1",
            "-t",
            "60",
            "--wrap",
            "sleep 1",
        ],
        env=_env(tmp_path, SLURMOPT_CONFIG=str(cfg)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for jid in _jobs_named(name):
        jobs.track(jid)
    assert res.returncode == 0, res.stderr
    (jid,) = _jobs_named(name)
    show = subprocess.run(
        ["scontrol", "-o", "show", "job", str(jid)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "Partition=h100 " in show
    assert re.search(r"TresPerNode=gres:gpu:h100:1|TresPerNode=gres/gpu:h100:1", show), show
    err = res.stderr
    rows = {
        line.split()[1] if line.split()[0] == "*" else line.split()[0]: line
        for line in err.splitlines()[2:]
        if line.startswith("  ") and "PARTITION" not in line
    }
    assert rows["h100"].lstrip().startswith("*") and " now " in rows["h100"]
    assert "+" in rows["a100"].split("yes", 1)[1].split()[0]  # a100 starts later
    assert "submitting to h100: earliest expected completion" in err
    # the rewritten request is valid for Slurm: released, it runs on an H100 node
    subprocess.run(["scontrol", "release", str(jid)], timeout=30, check=True)

    def started() -> str:
        out = subprocess.run(
            ["scontrol", "-o", "show", "job", str(jid)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        m = re.search(r"JobState=(\S+).*? NodeList=(\S*)", out)
        return f"{m.group(1)} {m.group(2)}" if m and m.group(1) != "PENDING" else ""

    state = wait_for(started, timeout=60)
    assert state.split()[0] in ("RUNNING", "COMPLETING", "COMPLETED"), state
    assert state.split()[1].startswith("gpu-h"), state
    # the user's allowed set is recorded for the controller
    spool = list(tmp_path.glob("*.jsonl"))
    assert spool and '"allowed":["a100","h100"]' in spool[0].read_text()


def test_test_only_creates_no_job_and_reports_like_sbatch(tmp_path: Path) -> None:
    wait_for(reachable, timeout=120, interval=1.0)
    args = ["--test-only", "-p", "a100,h100", "--gpus=1", "-J", "testonly", "--wrap", "true"]
    plain = subprocess.run(
        ["sbatch", *args], capture_output=True, text=True, timeout=60, check=False
    )
    mine = subprocess.run(
        [*OPTSUB, *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert mine.returncode == plain.returncode == 0
    # 25.11.7 prints "to start at <time> a using ..." (its format string has the "a")
    pat = (
        r"^sbatch: Job \d+ to start at \S+(?: a)? using \d+ processors"
        r" on nodes \S+ in partition (\S+)$"
    )
    m_plain = re.match(pat, plain.stderr.strip())
    m_mine = re.match(pat, mine.stderr.strip())
    assert m_plain and m_mine, (plain.stderr, mine.stderr)
    assert m_mine.group(1) in ("a100", "h100")
    assert mine.stdout == plain.stdout == ""
    assert _jobs_named("testonly") == []
