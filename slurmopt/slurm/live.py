"""The live squeue read of optsub's refresh: the command, and its parser (standard library only).

One ``squeue`` call (a few milliseconds; no JSON) lists the id, state,
partition, elapsed time, CPUs, GRES and nodes of every active job;
:mod:`slurmopt.optsub.fresh` corrects the cached snapshot with it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping

from slurmopt.errors import SlurmParseError
from slurmopt.slurm import fields

SQUEUE = "squeue"
"""The command's name; :func:`squeue_beside` finds the one next to a configured sbatch."""

SQUEUE_FORMAT = "%A|%t|%P|%M|%C|%b|%N|%u|%l|%D|%Q|%r"
"""Job id (one per array task), compact state, partition(s), elapsed, CPUs, GRES per node,
nodes, user, time limit, node count, priority, reason."""

_GPU_COUNT = re.compile(r"gpu(?::([A-Za-z_][\w.\-]*))?(?::(\d+))?")


class LiveJob:
    """One ``squeue`` line; the fields that need parsing are parsed on first use (with
    thousands of pending jobs, most lines are only looked up by id and state)."""

    __slots__ = ("_f", "_gres", "_more", "nodes", "partition", "state", "user")

    def __init__(self, fields_: list[str]) -> None:
        self._f = fields_
        self.state = fields_[1].strip()
        self.partition = fields_[2].strip()
        self.nodes = fields_[6].strip()
        self.user = fields_[7].strip()
        self._gres: tuple[int, str | None] | None = None
        self._more: tuple[int | None, int, int, str] | None = None

    @classmethod
    def of(
        cls,
        state: str,
        partition: str,
        elapsed: int,
        cpus: int,
        gpus: int,
        gpu_type: str | None,
        nodes: str,
        user: str = "",
    ) -> LiveJob:
        """A line from its values (tests, other readers)."""
        gres = f"gres:gpu:{gpu_type}:{gpus}" if gpu_type else f"gres:gpu:{gpus}"
        hms = f"{elapsed // 3600}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}"
        return cls(["0", state, partition, hms, str(cpus), gres, nodes, user])

    @property
    def elapsed(self) -> int:
        return elapsed_s(self._f[3])

    @property
    def cpus(self) -> int:
        return _int(self._f[4])

    @property
    def gpus(self) -> int:
        if self._gres is None:
            self._gres = gres_gpus(self._f[5])
        return self._gres[0]

    @property
    def gpu_type(self) -> str | None:
        if self._gres is None:
            self._gres = gres_gpus(self._f[5])
        return self._gres[1]

    def _extra(self) -> tuple[int | None, int, int, str]:
        if self._more is None:
            self._more = _more(self._f[8:]) if len(self._f) == 12 else (None, 1, 0, "")
        return self._more

    @property
    def limit(self) -> int | None:
        """Time limit in seconds (None: unlimited or not read)."""
        return self._extra()[0]

    @property
    def n_nodes(self) -> int:
        return self._extra()[1]

    @property
    def priority(self) -> int:
        return self._extra()[2]

    @property
    def reason(self) -> str:
        return self._extra()[3]


def squeue_argv(squeue: str = SQUEUE) -> list[str]:
    """The one command the refresh runs."""
    return [squeue, "--noheader", "--all", "--format", SQUEUE_FORMAT]


def read_live(
    squeue: str = SQUEUE, *, timeout: float = 1.0, env: Mapping[str, str] | None = None
) -> dict[int, LiveJob]:
    """Every active job ``squeue`` shows, by job id.

    Raises:
        OSError: squeue cannot be started.
        subprocess.TimeoutExpired: it ran past ``timeout``.
        RuntimeError: it failed (its first stderr line).
    """
    return Started(squeue, env).result(timeout)


class Started:
    """The refresh's ``squeue``, started now and read later (:meth:`result`), so that it
    runs while optsub reads the cache and imports the rest of its decision (issue 16).

    ``at`` is when it was started (epoch seconds): its answer describes the cluster
    from then on. :meth:`discard` kills and reaps it when its answer is not wanted.
    """

    __slots__ = ("_error", "_proc", "at", "squeue")

    def __init__(self, squeue: str = SQUEUE, env: Mapping[str, str] | None = None) -> None:
        import time

        self.squeue = squeue
        self.at = time.time()
        self._error: OSError | None = None
        self._proc: subprocess.Popen[str] | None = None
        try:
            self._proc = subprocess.Popen(
                squeue_argv(squeue),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=None if env is None else dict(env),
            )
        except OSError as exc:  # raised by result(), as subprocess.run would have
            self._error = exc

    def result(self, timeout: float) -> dict[int, LiveJob]:
        """Wait for it (at most ``timeout`` seconds more) and parse its answer.

        Raises:
            OSError: squeue could not be started.
            subprocess.TimeoutExpired: it ran past ``timeout`` (it is killed).
            RuntimeError: it failed (its first stderr line).
        """
        if self._error is not None:
            raise self._error
        proc = self._proc
        assert proc is not None
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            self.discard()
        if proc.returncode != 0:
            first = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
            raise RuntimeError(f"squeue failed: {first}")
        return parse_live(out)

    def discard(self) -> None:
        """Kill it if it still runs, and reap it (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            proc.communicate()


def parse_live(text: str) -> dict[int, LiveJob]:
    """``squeue --format SQUEUE_FORMAT`` output -> job id -> :class:`LiveJob` (bad lines out)."""
    out: dict[int, LiveJob] = {}
    for line in text.splitlines():
        f = line.split("|")
        if len(f) not in (8, 12):
            continue
        try:
            job_id = int(f[0])
        except ValueError:
            continue
        out[job_id] = LiveJob(f)
    return out


def _more(f: list[str]) -> tuple[int | None, int, int, str]:
    """Time limit (None: unlimited or unreadable), node count, priority, reason."""
    try:
        limit = fields.parse_duration(f[0])
    except SlurmParseError:
        limit = None
    return limit, max(1, _int(f[1])), _int(f[2]), f[3].strip()


def gres_gpus(gres: str) -> tuple[int, str | None]:
    """GPUs per node and their type from a GRES request (``gres:gpu:a100:2``, ``gres/gpu:2``)."""
    total, gtype = 0, None
    for raw in gres.split(","):
        item = raw.strip().removeprefix("gres:").removeprefix("gres/")
        m = _GPU_COUNT.fullmatch(item.split("(")[0])
        if not m:
            continue
        t, n = m.group(1), m.group(2)
        total += int(n) if n else 1
        gtype = t or gtype
    return total, gtype


def elapsed_s(text: str) -> int:
    """squeue's elapsed time (``%M``: ``M:SS``, ``H:MM:SS``, ``D-HH:MM:SS``) -> seconds.

    The one duration parser (:func:`slurmopt.slurm.fields.parse_duration`); 0 for
    anything it cannot read (``INVALID``).
    """
    try:
        return fields.parse_duration(text) or 0
    except SlurmParseError:
        return 0


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def squeue_command(sbatch: str, env: Mapping[str, str]) -> str:
    """``$SLURMOPT_SQUEUE``, else the squeue beside ``$SLURMOPT_SBATCH`` or ``sbatch`` (the
    configured one), else ``squeue``."""
    return env.get("SLURMOPT_SQUEUE") or squeue_beside(env.get("SLURMOPT_SBATCH") or sbatch)


def squeue_beside(sbatch: str) -> str:
    """The squeue in the directory of ``sbatch`` (a path), else plain ``squeue``."""
    head = os.path.dirname(sbatch)
    return os.path.join(head, SQUEUE) if head else SQUEUE
