"""Run the real sbatch for optsub, passing its output and exit status through.

The only place optsub starts a process. sbatch is run exactly once: there is
no retry, because a failed-looking call may still have created the job.
stdout is streamed as it comes (so ``--wait`` users see ``Submitted batch
job N`` at once) and captured to learn the job id; stderr is inherited, so
sbatch's messages reach the user byte for byte.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from collections.abc import Sequence
from typing import BinaryIO, NamedTuple

from slurmopt.lazylog import get_logger

log = get_logger(__name__)

SBATCH = "sbatch"
"""The command's name (``$SLURMOPT_SBATCH`` or ``[optsub] sbatch`` name another)."""

_JOB_RE = re.compile(rb"^(?:Submitted batch job )?(\d+)(?:;\S+)?\s*$", re.MULTILINE)


class SbatchResult(NamedTuple):
    """What sbatch did."""

    returncode: int
    stdout: bytes
    job_id: int | None
    error: str | None = None
    """optsub's own message (sbatch missing, timed out) for the caller to print."""


def job_id_from(stdout: bytes) -> int | None:
    """The job id in sbatch's output (``Submitted batch job N``, ``N`` or ``N;cluster``)."""
    m = _JOB_RE.search(stdout)
    return int(m.group(1)) if m else None


def run_sbatch(
    sbatch: str,
    argv: Sequence[str],
    *,
    stdin_data: bytes | None,
    timeout: float | None,
    out: BinaryIO,
) -> SbatchResult:
    """Run ``sbatch argv`` once; stream its stdout to ``out`` (optsub's stdout).

    ``stdin_data``: the script when it comes on standard input (fed once), else
    None (sbatch inherits optsub's stdin). ``timeout``: None only for ``--wait``.
    A missing sbatch gives exit status 127 and a message on stderr, as a shell would.
    """
    sink = out
    try:
        proc = subprocess.Popen(
            [sbatch, *argv],
            stdin=subprocess.PIPE if stdin_data is not None else None,
            stdout=subprocess.PIPE,
        )
    except OSError as exc:
        return SbatchResult(127, b"", None, f"cannot run {sbatch}: {exc.strerror}")
    if stdin_data is not None and proc.stdin is not None:
        try:
            proc.stdin.write(stdin_data)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
    captured = bytearray()
    assert proc.stdout is not None
    error = None
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        _stream(proc.stdout.fileno(), deadline, captured, sink)
        rc = proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        error = f"{sbatch} did not finish in {timeout:.0f} s"
    except KeyboardInterrupt:
        # Ctrl-C reached sbatch too (same process group): report what it does
        rc = proc.wait()
        captured += proc.stdout.read()
    data = bytes(captured)
    # with --wait a non-zero status is the job's: the id it printed is still the job's
    return SbatchResult(rc, data, job_id_from(data), error)


def _stream(fd: int, deadline: float | None, captured: bytearray, sink: BinaryIO) -> None:
    """Copy ``fd`` to ``sink`` as it comes (and into ``captured``) until EOF.

    Raises:
        subprocess.TimeoutExpired: ``deadline`` (monotonic) passed first; a
            sbatch that hangs on a stopped slurmctld keeps its stdout open.
    """
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            raise subprocess.TimeoutExpired("sbatch", 0)
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        captured += chunk
        sink.write(chunk)
        sink.flush()


def find_tagged(tag: str, user: str, *, timeout: float, squeue: str = "squeue") -> list[int]:
    """The ids of ``user``'s jobs whose comment is ``tag`` (one ``squeue`` call).

    Every state Slurm still shows (``-t all``: finished jobs stay for MinJobAge);
    an array's tasks count once (its base id).

    Raises:
        OSError: squeue cannot run, fails, or runs past ``timeout`` (the message says which).
    """
    argv = [squeue, "-h", "-u", user, "-t", "all", "-o", "%F|%k"]
    try:
        res = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"squeue did not answer in {timeout:g} s") from exc
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OSError(f"squeue failed ({err[-1] if err else f'exit {res.returncode}'})")
    ids: list[int] = []
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        jid, _, comment = line.partition("|")
        if comment.strip() == tag and jid.strip().isdigit() and int(jid) not in ids:
            ids.append(int(jid))
    return ids


def exec_sbatch(sbatch: str, argv: Sequence[str]) -> None:
    """Replace this process by sbatch (OPTSUB_OFF, --optsub-off): no return on success.

    Raises:
        OSError: sbatch cannot be executed.
    """
    os.execvp(sbatch, [sbatch, *argv])
