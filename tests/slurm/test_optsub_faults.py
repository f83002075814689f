"""optsub under faults, on the real testbed (docs/optsub.md, "Faults").

Every test submits held jobs with a unique name, then asserts what the user
and the controller would see: the job exists exactly once in Slurm, the spool
record (when there is one) names that job, its partition and its tag as Slurm
has them, and optsub's exit status and messages are the documented ones.

Faults: the spool read-only (a read-only bind mount: EROFS even for root) or
missing; ``-Q``; slurmctld stopped (SIGSTOP) while sbatch talks to it, so that
sbatch gives up ("Socket timed out") although slurmctld creates the job once
it resumes (SIGCONT); values that sbatch judges; several GPU types.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm.conftest import JobTracker, reachable, unavailable, wait_for

OPTSUB = [sys.executable, "-c", "from slurmopt.cli.optsub import main; main()"]
GPU_JOB = ["-p", "a100,h100", "--gres=gpu:a100:1", "-t", "60", "--wrap", "sleep 1"]


def _env(tmp_path: Path, spool: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SBATCH_", "SLURMOPT_", "OPTSUB_", "XDG_"))
    }
    cfg = tmp_path / "optsub.toml"  # generous: the machine is shared and busy
    cfg.write_text("[optsub]\ndecision_timeout_s = 30.0\nlive_refresh = false\n")
    return (
        env
        | {
            "HOME": str(tmp_path / "home"),
            "SLURMOPT_CONFIG": str(cfg),
            "SLURMOPT_SPOOL_DIR": str(spool),
            "SLURMOPT_STATE_CACHE": str(tmp_path / "no-cache.json"),
        }
        | extra
    )


def _squeue(name: str) -> list[dict[str, str]]:
    """Slurm's view of the jobs named ``name``: id, partition, comment."""
    res = subprocess.run(
        ["squeue", "-h", "-t", "all", "-n", name, "-o", "%i|%P|%k"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("|") for line in res.stdout.splitlines()]
    return [{"id": r[0], "partition": r[1], "comment": r[2]} for r in rows]


def _records(spool: Path) -> list[dict[str, object]]:
    return [json.loads(x) for f in spool.glob("*.jsonl") for x in f.read_text().splitlines()]


def _optsub(
    args: list[str], env: dict[str, str], jobs: JobTracker
) -> tuple[subprocess.CompletedProcess[str], str]:
    name = f"flt-{uuid.uuid4().hex[:8]}"
    wait_for(reachable, timeout=120, interval=1.0)
    r = subprocess.run(
        [*OPTSUB, "--hold", "-J", name, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    for row in _squeue(name):
        jobs.track(int(row["id"]))
    return r, name


def _only_job(name: str) -> dict[str, str]:
    rows = _squeue(name)
    assert len(rows) == 1, rows  # exactly once
    return rows[0]


def _assert_record_matches_slurm(spool: Path, job: dict[str, str], source: str) -> None:
    (rec,) = _records(spool)
    data = rec["data"]
    assert isinstance(data, dict)
    assert rec["job_id"] == int(job["id"])
    assert data["partition"] == job["partition"]
    assert data["tag"] == job["comment"] and str(data["tag"]).startswith("optsub:")
    assert data["job_id_from"] == source


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[Path]:
    """``path`` as a read-only bind mount of itself (writes fail with EROFS, even for root)."""
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "--bind", str(path), str(path)], capture_output=True, check=False
    )
    if mount.returncode != 0:
        unavailable(f"cannot bind-mount a read-only spool: {mount.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True, timeout=30)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False, timeout=30)


def test_read_only_spool_warns_once_and_writes_nowhere_else(
    tmp_path: Path, jobs: JobTracker
) -> None:
    spool = tmp_path / "spool"
    shared_before = (
        set(os.listdir("/var/spool/slurmopt")) if os.path.isdir("/var/spool/slurmopt") else None
    )
    with _read_only(spool):
        env = _env(tmp_path, spool)
        r, name = _optsub(GPU_JOB, env, jobs)
        job = _only_job(name)
        assert r.returncode == 0 and r.stdout == f"Submitted batch job {job['id']}\n"
        assert r.stderr.splitlines() == [
            f"optsub: warning: decision not recorded in spool {spool}: Read-only file system; "
            f"job {job['id']} is submitted"
        ]
        # the controller ingests exactly this directory, and nothing went anywhere else
        from slurmopt.history.config import HistoryConfig

        assert HistoryConfig().resolved_spool(env) == spool
    assert not list(spool.iterdir())
    assert not list(tmp_path.rglob("optsub-*.jsonl"))
    after = set(os.listdir("/var/spool/slurmopt")) if os.path.isdir("/var/spool/slurmopt") else None
    assert after == shared_before


def test_missing_spool_is_not_created_and_the_job_is_submitted(
    tmp_path: Path, jobs: JobTracker
) -> None:
    spool = tmp_path / "missing"
    r, name = _optsub(GPU_JOB, _env(tmp_path, spool), jobs)
    job = _only_job(name)
    assert r.returncode == 0 and r.stdout == f"Submitted batch job {job['id']}\n"
    assert r.stderr.splitlines() == [
        f"optsub: warning: decision not recorded in spool {spool}: spool {spool} does not "
        f"exist (an admin creates it, mode 1777); job {job['id']} is submitted"
    ]
    assert not spool.exists() and not list(tmp_path.rglob("optsub-*.jsonl"))


def test_record_matches_slurm(tmp_path: Path, jobs: JobTracker) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    r, name = _optsub(GPU_JOB, _env(tmp_path, spool), jobs)
    assert r.returncode == 0 and r.stderr == ""
    job = _only_job(name)
    assert r.stdout == f"Submitted batch job {job['id']}\n"
    _assert_record_matches_slurm(spool, job, "stdout")


def test_quiet_submission_is_recorded_with_its_job_id(tmp_path: Path, jobs: JobTracker) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    r, name = _optsub(["-Q", *GPU_JOB], _env(tmp_path, spool), jobs)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    _assert_record_matches_slurm(spool, _only_job(name), "tag")


def _live_cache(path: Path) -> Path:
    """A fresh state cache from a live read (so the decision needs no slurmctld)."""
    from slurmopt.slurm.backend import get_backend
    from slurmopt.statecache import write_cache

    write_cache(get_backend().snapshot(), path)
    return path


def _ctld_pid(slurm_env: dict[str, str]) -> int:
    pid_file = Path(slurm_env["SLURMOPT_TESTBED_DIR"]) / "pids" / "slurmctld.pid"
    pid = int(pid_file.read_text().strip())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"slurmctld")
    return pid


def test_sbatch_timed_out_but_job_created_is_found_and_not_resubmitted(
    tmp_path: Path, jobs: JobTracker, slurm_env: dict[str, str]
) -> None:
    """slurmctld is paused while sbatch waits for it: sbatch gives up after
    MessageTimeout (10 s) with "Socket timed out"; resumed, slurmctld creates the
    job anyway. optsub finds it by its tag (one squeue), says so, exits 0."""
    if os.geteuid() != 0:
        unavailable("pausing slurmctld needs root")
    spool = tmp_path / "spool"
    spool.mkdir()
    wait_for(reachable, timeout=120, interval=1.0)
    cache = _live_cache(tmp_path / "cache.json")
    env = _env(tmp_path, spool, SLURMOPT_STATE_CACHE=str(cache))
    name = f"flt-{uuid.uuid4().hex[:8]}"
    pid = _ctld_pid(slurm_env)
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = subprocess.Popen(
            [*OPTSUB, "--hold", "-J", name, *GPU_JOB],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()  # sbatch's own error, after MessageTimeout
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    for row in _squeue(name):
        jobs.track(int(row["id"]))
    assert (
        first
        == "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"
    )
    job = _only_job(name)
    assert proc.returncode == 0
    assert out == f"Submitted batch job {job['id']}\n"
    assert err.splitlines() == [
        f"optsub: sbatch reported a failure, but job {job['id']} was created: not submitting again"
    ]
    _assert_record_matches_slurm(spool, job, "tag")
    (rec,) = _records(spool)
    assert rec["data"]["sbatch_rc"] == 1  # type: ignore[index]


def test_optsub_stops_a_hung_sbatch_and_reports_what_slurm_has(
    tmp_path: Path, jobs: JobTracker, slurm_env: dict[str, str]
) -> None:
    """slurmctld paused longer than ``sbatch_timeout_s``: optsub stops sbatch,
    looks the tag up once slurmctld answers again, and reports what Slurm has:
    the job (exit 0) or no job (exit 1); never a second submission."""
    if os.geteuid() != 0:
        unavailable("pausing slurmctld needs root")
    spool = tmp_path / "spool"
    spool.mkdir()
    wait_for(reachable, timeout=120, interval=1.0)
    cache = _live_cache(tmp_path / "cache.json")
    env = _env(tmp_path, spool, SLURMOPT_STATE_CACHE=str(cache))
    cfg = Path(env["SLURMOPT_CONFIG"])
    cfg.write_text(cfg.read_text() + "sbatch_timeout_s = 2.0\n")
    name = f"flt-{uuid.uuid4().hex[:8]}"
    pid = _ctld_pid(slurm_env)
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = subprocess.Popen(
            [*OPTSUB, "--hold", "-J", name, *GPU_JOB],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()
        time.sleep(0.5)  # optsub's squeue is waiting for slurmctld now
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    rows = _squeue(name)
    for row in rows:
        jobs.track(int(row["id"]))
    assert first.startswith("optsub: ") and "did not finish in 2 s" in first
    (rec,) = _records(spool)
    data = rec["data"]
    assert isinstance(data, dict)
    assert len(rows) <= 1  # never twice
    if rows:  # whenever Slurm has it, the job carries the recorded tag
        assert rows[0]["comment"] == data["tag"]
    if proc.returncode == 0:  # found by the tag
        assert out == f"Submitted batch job {rows[0]['id']}\n"
        assert err.splitlines()[-1].endswith("was created: not submitting again")
        _assert_record_matches_slurm(spool, rows[0], "tag")
    else:  # not (yet) created when optsub looked: said so, recorded with its tag only
        assert proc.returncode == 1 and out == ""
        assert err.splitlines()[-1] == (
            f"optsub: no job carries --comment={data['tag']} yet: "
            "check squeue --me before resubmitting"
        )
        assert rec["job_id"] is None and data["job_id_from"] is None


JUDGED = [  # sbatch rejects the first three, accepts the last two
    ["-t", "abc"],
    ["--mem=1.5G"],
    ["--gpus=a100:x"],
    ["-t", "2-"],
    ["-t", "-5"],
]


@pytest.mark.parametrize("bad", JUDGED, ids=[" ".join(b) for b in JUDGED])
def test_values_sbatch_judges_leave_stderr_alone(
    bad: list[str], tmp_path: Path, jobs: JobTracker
) -> None:
    """Exit status, stdout (job id aside) and stderr byte for byte equal plain sbatch's."""
    spool = tmp_path / "spool"
    spool.mkdir()
    args = ["--hold", "-p", "a100,h100", "--gres=gpu:1", *bad, "--wrap", "sleep 1"]
    wait_for(reachable, timeout=120, interval=1.0)
    env = _env(tmp_path, spool)
    plain = subprocess.run(["sbatch", *args], capture_output=True, env=env, timeout=60, check=False)
    mine = subprocess.run([*OPTSUB, *args], capture_output=True, env=env, timeout=60, check=False)
    ids = [int(m) for r in (plain, mine) for m in re.findall(rb"job (\d+)", r.stdout)]
    for jid in ids:
        jobs.track(jid)
    assert mine.returncode == plain.returncode
    assert mine.stderr == plain.stderr
    assert re.sub(rb"\d+", b"N", mine.stdout) == re.sub(rb"\d+", b"N", plain.stdout)
    assert len(ids) == (2 if plain.returncode == 0 else 0)  # one job each, or none
    (rec,) = _records(spool)
    data = rec["data"]
    assert isinstance(data, dict)
    if plain.returncode != 0:  # a value optsub cannot read: passed through as written
        assert data["action"] == "passthrough" and data["argv"] == args
        assert str(data["reason"]).startswith("sbatch judges this value")


def test_several_gpu_types_pass_through_unchanged(tmp_path: Path, jobs: JobTracker) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    args = ["--hold", "--gres=gpu:a100:1,gpu:h100:1", "-p", "a100,h100", "-t", "10"]
    args += ["--wrap", "sleep 1"]
    wait_for(reachable, timeout=120, interval=1.0)
    env = _env(tmp_path, spool)
    plain = subprocess.run(["sbatch", *args], capture_output=True, env=env, timeout=60, check=False)
    mine = subprocess.run([*OPTSUB, *args], capture_output=True, env=env, timeout=60, check=False)
    ids = [int(m) for r in (plain, mine) for m in re.findall(rb"job (\d+)", r.stdout)]
    for jid in ids:
        jobs.track(jid)
    assert (mine.returncode, mine.stderr) == (plain.returncode, plain.stderr)
    (rec,) = _records(spool)
    data = rec["data"]
    assert data["action"] == "passthrough" and data["argv"] == args  # type: ignore[index]
    assert data["reason"] == "several GPU types (a100,h100): submitted as written"  # type: ignore[index]
    if plain.returncode == 0:
        parts = subprocess.run(
            ["squeue", "-h", "-j", ",".join(map(str, ids)), "-o", "%P"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        assert parts == ["a100,h100", "a100,h100"]


NO_T = ["-p", "a100,v100", "--gres=gpu:1", "--wrap", "sleep 1"]


def test_without_t_the_job_is_not_sent_where_slurm_would_stop_it_sooner(
    tmp_path: Path, jobs: JobTracker
) -> None:
    """No -t, ``-p a100,v100``: Slurm gives the job a100's DefaultTime 04:00:00 or
    v100's 02:00:00. optsub ranks it as needing a100's 4 h (first listed), so
    v100 is not eligible; the job is in a100 with Slurm's limit 4:00:00."""
    spool = tmp_path / "spool"
    spool.mkdir()
    name = f"flt-{uuid.uuid4().hex[:8]}"
    wait_for(reachable, timeout=120, interval=1.0)
    r = subprocess.run(
        [*OPTSUB, "--optsub-explain", "--hold", "-J", name, *NO_T],
        env=_env(tmp_path, spool),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for row in _squeue(name):
        jobs.track(int(row["id"]))
    assert r.returncode == 0, r.stderr
    job = _only_job(name)
    (rec,) = _records(spool)
    data = rec["data"]
    assert isinstance(data, dict)
    assert data["time_limits"] == {"a100": 4 * 3600, "v100": 2 * 3600}
    assert data["time_limit_basis"] == "a100 04:00:00 (first partition listed)"
    assert job["partition"] == data["partition"] == "a100"
    assert "without -t the job gets 02:00:00 here (DefaultTime)" in r.stderr
    assert "ranked as if -t were a100 04:00:00 (first partition listed)" in r.stderr
    limit = subprocess.run(
        ["squeue", "-h", "-j", job["id"], "-o", "%l"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert limit == "4:00:00"


def test_concurrent_submissions_with_a_read_only_spool_are_each_submitted_once_and_warned(
    tmp_path: Path, jobs: JobTracker
) -> None:
    """The issue's 500-submission run, smaller: every job exists once, every
    optsub says its record was not written, and none went to another directory."""
    from concurrent.futures import ThreadPoolExecutor

    spool = tmp_path / "spool"
    n = 10
    tag = f"flt-{uuid.uuid4().hex[:6]}"
    wait_for(reachable, timeout=120, interval=1.0)
    with _read_only(spool):
        env = _env(tmp_path, spool)

        def one(i: int) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*OPTSUB, "--hold", "-J", f"{tag}-{i}", *GPU_JOB],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(one, range(n)))
    for i in range(n):
        for row in _squeue(f"{tag}-{i}"):
            jobs.track(int(row["id"]))
    for i, r in enumerate(results):
        job = _only_job(f"{tag}-{i}")
        assert r.returncode == 0 and r.stdout == f"Submitted batch job {job['id']}\n"
        assert r.stderr.splitlines() == [
            f"optsub: warning: decision not recorded in spool {spool}: Read-only file system; "
            f"job {job['id']} is submitted"
        ]
    assert not list(tmp_path.rglob("optsub-*.jsonl"))
