"""Fixtures for tests against the real local Slurm testbed (``scripts/testbed``).

Every test in this folder is marked ``slurm`` (see ``tests/conftest.py``) and
depends on :func:`slurm_env` (autouse): if the testbed cannot be reached or
brought up, the test is skipped with the reason, or fails when ``CI=true``.

Fixtures (names and signatures are stable; other test modules rely on them):

* ``slurm_env`` (session): ensures the testbed runs (``scripts/testbed up`` if
  needed), sets ``os.environ["SLURM_CONF"]`` and friends, returns them as a dict.
* ``cluster_spec`` (session): the :class:`slurmopt.clusterspec.ClusterSpec` of the
  running testbed.
* ``jobs`` (function): ``jobs.submit(*sbatch_args) -> int`` (``sbatch --parsable``)
  and ``jobs.track(job_id)``; every tracked job is cancelled at teardown and
  waited for until it has left the active states.
* ``ctld_stopped`` (function): a context manager that stops slurmctld through its
  pid file and, on exit, brings it back with ``scripts/testbed up``:
  ``with ctld_stopped: ...`` (or ``with ctld_stopped(): ...``).
* ``wait_for(predicate, timeout=30.0, interval=0.5)``: poll with a deadline;
  a plain function (``from tests.slurm.conftest import wait_for``) and a fixture.
* ``register_user(name, *accounts)``: the testbed runs with accounting
  (``AccountingStorageEnforce=associations,limits,qos``), so a unix user made with
  ``useradd`` must get an association before it can submit: this runs
  ``scripts/testbed add-user NAME [--account A ...]`` (idempotent; no accounts = the
  spec's default account) and returns the user's accounts. A plain function
  (``from tests.slurm.conftest import register_user``).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import pytest

from slurmopt.clusterspec import ClusterSpec, load_spec

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "scripts" / "testbed"
UP_TIMEOUT_S = 300.0
CMD_TIMEOUT_S = 30.0

# Job states in which a job still holds or waits for resources.
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETING",
        "CONFIGURING",
        "RESIZING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)

T = TypeVar("T")


# ---------------------------------------------------------------------------
# helpers


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.5) -> T:
    """Call ``predicate`` until it returns something truthy; return that value.

    Raises:
        TimeoutError: if the deadline passes first (the message carries the last value).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"{name} still false after {timeout:.1f}s (last value {value!r})")
        time.sleep(interval)


def ci_mode() -> bool:
    """True when running in CI (``CI=true``): unreachable Slurm fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> None:
    """Skip (or, with ``CI=true``, fail) the current test because Slurm cannot be used."""
    if ci_mode():
        pytest.fail(f"real-Slurm test cannot run (CI=true): {reason}", pytrace=False)
    pytest.skip(reason)


def testbed(*args: str, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/testbed ARGS`` with the current environment."""
    return subprocess.run(
        [sys.executable, str(TESTBED), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def register_user(name: str, *accounts: str) -> list[str]:
    """Let unix user ``name`` submit jobs on the accounting testbed (see the module doc).

    Raises:
        AssertionError: if ``scripts/testbed add-user`` fails (with its message).
    """
    args = [a for acc in accounts for a in ("--account", acc)]
    res = testbed("add-user", name, *args, timeout=60)
    assert res.returncode == 0, f"scripts/testbed add-user {name} failed: {res.stderr.strip()}"
    last = (res.stderr.strip().splitlines() or [""])[-1]
    return [] if "accounts " not in last else last.split("accounts ", 1)[1].split(", ")


def parse_env_lines(text: str) -> dict[str, str]:
    """Parse ``export K=V`` lines (as ``scripts/testbed env`` prints them)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    return env


def slurm_cmd(argv: list[str], timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run a Slurm command (argv list) with a timeout; never raises on a non-zero exit."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def show_job(job_id: int) -> dict[str, str]:
    """``scontrol -o show job ID`` as fields (the first value of each key wins)."""
    res = slurm_cmd(["scontrol", "-o", "show", "job", str(job_id)], timeout=30)
    res.check_returncode()
    fields: dict[str, str] = {}
    for word in res.stdout.split():
        key, _, value = word.partition("=")
        fields.setdefault(key, value)
    return fields


def reachable() -> bool:
    """True if slurmctld answers (``scontrol ping``) under the current ``SLURM_CONF``."""
    conf = os.environ.get("SLURM_CONF", "")
    if not conf or not Path(conf).is_file():
        return False  # Slurm clients would retry a missing file for 60 s
    try:
        res = slurm_cmd(["scontrol", "ping"], timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and "UP" in res.stdout


def active_job_ids(ids: set[int]) -> set[int]:
    """The subset of ``ids`` that Slurm still shows in an active state."""
    res = slurm_cmd(["squeue", "-h", "-a", "-t", "all", "-o", "%A %T"])
    if res.returncode != 0:
        return set(ids)  # cannot tell: assume still there
    alive: set[int] = set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1] in ACTIVE_STATES:
            alive.add(int(parts[0]))
    return alive & ids


def parse_job_id(stdout: str) -> int:
    """Extract the job id from ``sbatch --parsable`` output (``123`` or ``123;cluster``)."""
    for line in reversed(stdout.strip().splitlines()):
        head = line.strip().split(";", 1)[0]
        if head.isdigit():
            return int(head)
    raise ValueError(f"no job id in sbatch output {stdout!r}")


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def slurm_env() -> dict[str, str]:
    """Ensure the testbed is up; export its variables into ``os.environ`` and return them."""
    if not TESTBED.exists():
        unavailable(f"{TESTBED} is missing")
    try:
        res = testbed("env", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"scripts/testbed env failed: {exc}")
        raise  # unreachable: unavailable() raises
    env = parse_env_lines(res.stdout)
    if res.returncode != 0 or "SLURM_CONF" not in env:
        unavailable(f"scripts/testbed env failed: {res.stderr.strip()[-2000:]}")
    os.environ.update(env)
    if not reachable():
        if os.geteuid() != 0:
            unavailable("the Slurm testbed is not running and bringing it up needs root")
        try:
            up = testbed("up")
        except subprocess.TimeoutExpired:
            unavailable(f"scripts/testbed up did not finish within {UP_TIMEOUT_S:.0f}s")
            raise
        if up.returncode != 0 or not reachable():
            tail = (up.stdout + up.stderr).strip()[-3000:]
            unavailable(f"scripts/testbed up failed (rc={up.returncode}):\n{tail}")
    return env


@pytest.fixture(autouse=True)
def _require_slurm(slurm_env: dict[str, str]) -> None:
    """Make every test in this folder depend on a reachable testbed."""


@pytest.fixture(scope="session")
def cluster_spec(slurm_env: dict[str, str]) -> ClusterSpec:
    """The parsed cluster spec the running testbed was built from."""
    path = slurm_env.get("SLURMOPT_TESTBED_SPEC")
    if not path:
        unavailable("scripts/testbed env did not name the running spec")
        raise AssertionError("unreachable")
    return load_spec(path)


class JobTracker:
    """Submits jobs and cancels every tracked one at teardown."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def submit(self, *sbatch_args: str, timeout: float = CMD_TIMEOUT_S) -> int:
        """Run ``sbatch --parsable ARGS``, track the job and return its id.

        Raises:
            AssertionError: if sbatch fails (the message carries its stderr).
        """
        res = slurm_cmd(["sbatch", "--parsable", *sbatch_args], timeout=timeout)
        assert res.returncode == 0, f"sbatch {' '.join(sbatch_args)} failed: {res.stderr.strip()}"
        return self.track(parse_job_id(res.stdout))

    def track(self, job_id: int) -> int:
        """Cancel ``job_id`` at teardown too; returns it."""
        if job_id not in self.ids:
            self.ids.append(int(job_id))
        return int(job_id)

    def cleanup(self, timeout: float = 60.0) -> None:
        """Cancel every tracked job and wait until none is active any more."""
        if not self.ids:
            return
        pending = set(self.ids)
        slurm_cmd(["scancel", *map(str, sorted(pending))])
        try:
            wait_for(lambda: not active_job_ids(pending), timeout=timeout, interval=0.5)
        except TimeoutError:
            left = active_job_ids(pending)
            slurm_cmd(["scancel", "--signal=KILL", "--full", *map(str, sorted(left))])
            wait_for(lambda: not active_job_ids(pending), timeout=30, interval=0.5)


@pytest.fixture
def jobs(slurm_env: dict[str, str]) -> Iterator[JobTracker]:
    """Submit and track jobs; all of them are cancelled (and gone) after the test."""
    tracker = JobTracker()
    try:
        yield tracker
    finally:
        tracker.cleanup()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class CtldStopped:
    """Context manager: slurmctld is stopped inside, restarted by ``testbed up`` on exit."""

    def __init__(self, testbed_dir: Path) -> None:
        self.pid_file = testbed_dir / "pids" / "slurmctld.pid"
        self.stopped = False

    def __call__(self) -> CtldStopped:
        return self

    def _ctld_pid(self) -> int:
        pid = int(self.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        assert cmdline.endswith(b"slurmctld"), f"pid {pid} is not slurmctld: {cmdline!r}"
        return pid

    def __enter__(self) -> CtldStopped:
        pid = self._ctld_pid()
        os.kill(pid, signal.SIGTERM)
        self.stopped = True
        wait_for(lambda: not _pid_alive(pid), timeout=60, interval=0.2)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restart()

    def restart(self) -> None:
        """Bring slurmctld back (idempotent)."""
        if not self.stopped:
            return
        res = testbed("up")
        assert res.returncode == 0, f"scripts/testbed up failed: {res.stdout}{res.stderr}"
        self.stopped = False


@pytest.fixture
def ctld_stopped(slurm_env: dict[str, str]) -> Iterator[CtldStopped]:
    """``with ctld_stopped: ...`` runs its body with slurmctld stopped."""
    if os.geteuid() != 0:
        unavailable("stopping slurmctld needs root")
    ctx = CtldStopped(Path(slurm_env["SLURMOPT_TESTBED_DIR"]))
    try:
        yield ctx
    finally:
        ctx.restart()


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., object]:
    """The :func:`wait_for` helper as a fixture."""
    return wait_for
