"""Concurrent optsub runs on the real testbed: the submit lock makes each decision see
the jobs submitted just before it (issue 16).

Six ``optsub -p h100,v100 --gpus-per-node=4`` started at once on an idle testbed (h100:
2 nodes x 8 GPUs, v100: 2 x 4): four fit on the H100s, the other two start at once on
the V100s. With the lock, that is what happens. The control runs the same burst with
the lock off and a wrapper around the real sbatch that lets no submission through until
all six have called it (the worst case of a burst: every decision made before any
submission exists): then all six see the H100s free and two wait there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from slurmopt.controller.cycle import write_state_cache
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import get_backend
from tests.slurm.conftest import JobTracker, parse_job_id, show_job, wait_for

OPTSUB = [sys.executable, "-c", "from slurmopt.cli.optsub import main; main()"]
N = 6

BARRIER_SBATCH = textwrap.dedent(
    """\
    #!{python}
    import os, sys, time
    d = os.environ["BARRIER_DIR"]
    open(os.path.join(d, str(os.getpid())), "w").close()
    deadline = time.time() + 60
    while len(os.listdir(d)) < {n} and time.time() < deadline:
        time.sleep(0.01)
    os.execvp("sbatch", ["sbatch", *sys.argv[1:]])
    """
)


def _burst(tmp_path: Path, jobs: JobTracker, *, lock: bool) -> list[str]:
    """Six optsub at once; the partition each job is in."""
    cache = tmp_path / "cache.json"
    write_state_cache(get_backend().snapshot(), OptimizeConfig(), cache, {})
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o1777)
    spool.chmod(0o1777)
    conf = tmp_path / "optsub.toml"
    conf.write_text(
        f"[optsub]\nsubmit_lock_s = {5.0 if lock else 0.0}\ndecision_timeout_s = 30.0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    env |= {
        "SLURMOPT_STATE_CACHE": str(cache),
        "SLURMOPT_SPOOL_DIR": str(spool),
        "SLURMOPT_CONFIG": str(conf),
        "SLURMOPT_SQUEUE": "squeue",
    }
    if not lock:
        wrapper = tmp_path / "sbatch"
        wrapper.write_text(BARRIER_SBATCH.format(python=sys.executable, n=N))
        wrapper.chmod(0o755)
        (tmp_path / "barrier").mkdir()
        env |= {"SLURMOPT_SBATCH": str(wrapper), "BARRIER_DIR": str(tmp_path / "barrier")}
    argv = ["-p", "h100,v100", "--gpus-per-node=4", "-c", "1", "--mem=1G", "-t", "10"]
    argv += ["-o", "/dev/null", "--parsable", "--wrap", "sleep 300"]
    procs = [
        subprocess.Popen(
            [*OPTSUB, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(N)
    ]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert "warning" not in err, err  # decided and recorded, not failed open
        ids.append(jobs.track(parse_job_id(out)))
    return [show_job(j)["Partition"] for j in ids]


def test_a_burst_with_the_submit_lock_fills_the_h100s_then_the_v100s(
    tmp_path: Path, jobs: JobTracker
) -> None:
    parts = _burst(tmp_path, jobs, lock=True)
    assert sorted(parts) == ["h100"] * 4 + ["v100"] * 2, parts
    # and they all run at once: none waits behind another of the burst
    assert wait_for(lambda: all(show_job(j)["JobState"] == "RUNNING" for j in jobs.ids), timeout=60)


def test_without_the_lock_every_decision_of_the_burst_sees_the_h100s_free(
    tmp_path: Path, jobs: JobTracker
) -> None:
    parts = _burst(tmp_path, jobs, lock=False)
    assert parts == ["h100"] * N, parts
