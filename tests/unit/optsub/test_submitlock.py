"""The submit lock: concurrent optsub runs see each other's jobs; the lock is bounded,
never followed through a link, and never turns a submission into a failure.

Real files, real processes (optsub as a subprocess against a fake sbatch)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from slurmopt.optsub import submitlock
from slurmopt.statecache import write_cache
from tests.unit.optsub.conftest import make_snapshot

# A fake sbatch: a new job id per call; with FAKE_BARRIER, it waits (at most 20 s) until
# FAKE_N calls have started, so that every optsub of a burst has decided before any
# record is written (what a burst without the lock looks like at its worst).
FAKE = textwrap.dedent(
    """\
    #!{python}
    import os, sys, time
    barrier = os.environ.get("FAKE_BARRIER")
    if barrier:
        open(os.path.join(barrier, str(os.getpid())), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(barrier)) < int(os.environ["FAKE_N"]) and time.time() < deadline:
            time.sleep(0.01)
    print("Submitted batch job", 1000 + os.getpid())
    """
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "sbatch"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    cache = tmp_path / "cache.json"
    # a100s busy for a day, the two h100 nodes (4 GPUs each) idle
    write_cache(make_snapshot(now=int(time.time())), cache)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o1777)
    spool.chmod(0o1777)
    (tmp_path / "cfg.toml").write_text(
        "[optsub]\ncache_max_age_s = 3600.0\nlive_read = false\nlive_refresh = false\n"
        "decision_timeout_s = 30.0\nsubmit_lock_s = 5.0\n"
    )
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    e.update(
        SLURMOPT_SBATCH=str(fake),
        SLURMOPT_STATE_CACHE=str(cache),
        SLURMOPT_SPOOL_DIR=str(spool),
        SLURMOPT_CONFIG=str(tmp_path / "cfg.toml"),
        HOME=str(tmp_path),
    )
    return e


def burst(env: dict[str, str], tmp_path: Path, n: int) -> list[dict[str, object]]:
    """``n`` optsub runs started at once; their spool records."""
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\ntrue\n")
    argv = ["-p", "a100,h100", "--gpus-per-node=4", "--mem=1G", "-t", "60", str(job)]
    code = "from slurmopt.cli.optsub import main; main()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and b"Submitted batch job" in out, err
    recs = [
        json.loads(line)
        for f in Path(env["SLURMOPT_SPOOL_DIR"]).glob("optsub-*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert len(recs) == n and len({r["job_id"] for r in recs}) == n
    return recs


def h100_starts_now(recs: list[dict[str, object]]) -> int:
    """How many decisions saw the h100s free at the moment they decided."""
    count = 0
    for r in recs:
        data = r["data"]
        assert isinstance(data, dict)
        h100 = next(c for c in data["candidates"] if c["partition"] == "h100")
        count += h100["start"] <= data["now"] + 1
    return count


def test_a_burst_with_the_lock_sees_each_others_jobs(env: dict[str, str], tmp_path: Path) -> None:
    """4 jobs of 4 GPUs at once, 2 idle h100 nodes: with the lock, exactly 2 decisions see
    the h100s free (the 3rd and 4th see the first two); without it (the control), all 4
    decide before any record exists and all 4 see them free."""
    recs = burst(env, tmp_path, 4)
    assert h100_starts_now(recs) == 2
    assert (Path(env["SLURMOPT_SPOOL_DIR"]) / submitlock.LOCK_NAME).is_file()


def test_without_the_lock_a_burst_sees_the_same_free_gpus(
    env: dict[str, str], tmp_path: Path
) -> None:
    cfg = Path(env["SLURMOPT_CONFIG"])
    cfg.write_text(cfg.read_text().replace("submit_lock_s = 5.0", "submit_lock_s = 0"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    recs = burst({**env, "FAKE_BARRIER": str(barrier), "FAKE_N": "4"}, tmp_path, 4)
    assert h100_starts_now(recs) == 4
    assert not (Path(env["SLURMOPT_SPOOL_DIR"]) / submitlock.LOCK_NAME).exists()


def test_a_held_lock_delays_by_the_bound_and_the_job_is_still_submitted(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A user holds the lock forever: optsub waits at most submit_lock_s, then decides
    and submits without it (exactly once, exit 0)."""
    cfg = Path(env["SLURMOPT_CONFIG"])
    cfg.write_text(cfg.read_text().replace("submit_lock_s = 5.0", "submit_lock_s = 0.3"))
    held = submitlock.acquire(env["SLURMOPT_SPOOL_DIR"], 1.0)
    assert held is not None
    try:
        t = time.monotonic()
        recs = burst(env, tmp_path, 1)
        assert time.monotonic() - t >= 0.3  # it did wait for the lock...
        assert recs[0]["data"]["sbatch_rc"] == 0  # type: ignore[index]  # ...and submitted
    finally:
        submitlock.release(held)


def test_acquire_release_and_the_bound(tmp_path: Path) -> None:
    d = str(tmp_path)
    fd = submitlock.acquire(d, 0.2)
    assert fd is not None
    st = os.fstat(fd)
    assert st.st_mode & 0o777 == 0o444 and st.st_nlink == 1
    # another open file description (as another process would have) cannot take it
    t = time.monotonic()
    assert submitlock.acquire(d, 0.2) is None
    waited = time.monotonic() - t
    assert 0.2 <= waited < 2.0  # bounded (generous upper bound: a loaded machine)
    submitlock.release(fd)
    again = submitlock.acquire(d, 0.2)
    assert again is not None
    submitlock.release(again)
    assert submitlock.acquire(d, 0) is None  # 0: no lock
    assert submitlock.acquire(str(tmp_path / "missing"), 0.2) is None


def test_a_symlink_fifo_hard_link_or_directory_is_never_locked(tmp_path: Path) -> None:
    """What a hostile user can plant under the lock's name in the shared spool: none of it
    is followed, opened for writing, or blocks; optsub then goes without the lock."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o1777)
    spool.chmod(0o1777)
    lock = spool / submitlock.LOCK_NAME
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    victim.chmod(0o600)
    before = victim.stat()

    lock.symlink_to(victim)
    assert submitlock.acquire(str(spool), 0.2) is None
    # not followed: the target is unchanged and nobody holds a lock on it
    assert victim.read_text() == "root's\n" and victim.stat().st_mode == before.st_mode
    with open(victim) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.unlink()
    lock.symlink_to(tmp_path / "dangling")  # would create the target if followed
    assert submitlock.acquire(str(spool), 0.2) is None
    assert not (tmp_path / "dangling").exists()
    lock.unlink()

    os.mkfifo(lock)
    t = time.monotonic()
    assert submitlock.acquire(str(spool), 0.2) is None
    assert time.monotonic() - t < 2.0  # opened without blocking, refused at once
    lock.unlink()

    os.link(victim, lock)  # a hard link (to a file of the caller's own here)
    assert submitlock.acquire(str(spool), 0.2) is None
    lock.unlink()

    lock.mkdir()
    assert submitlock.acquire(str(spool), 0.2) is None
    lock.rmdir()

    # the spool itself replaced by a symlink, or writable by all without the sticky bit
    link = tmp_path / "spool-link"
    link.symlink_to(spool)
    assert submitlock.acquire(str(link), 0.2) is None
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    assert submitlock.acquire(str(loose), 0.2) is None
    assert not (loose / submitlock.LOCK_NAME).exists()
