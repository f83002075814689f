"""Every error slurmopt raises on purpose, under one base, and the exit codes they map to."""

from __future__ import annotations

from collections.abc import Sequence


class SlurmoptError(Exception):
    """Base of every error slurmopt raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(SlurmoptError):
    """Invalid or unreadable configuration."""

    exit_code = 2


class SlurmUnavailable(SlurmoptError):
    """slurmctld (or a Slurm command) could not be reached in time."""

    exit_code = 3


class SlurmCommandError(SlurmoptError):
    """A Slurm command ran and failed."""

    exit_code = 4

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, stdout: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        msg = stderr.strip() or stdout.strip() or "(no output)"
        super().__init__(f"{' '.join(self.argv)} exited {returncode}: {msg}")


class SlurmParseError(SlurmoptError):
    """Slurm answered something slurmopt cannot read (never returned as partial state)."""

    exit_code = 5


class JobNotPending(SlurmoptError):
    """The job started, finished or vanished before the change could be applied.

    An expected outcome of acting on a live queue, not a crash.
    """

    exit_code = 6

    def __init__(self, job_id: int | str, detail: str = "") -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} is no longer pending" + (f": {detail}" if detail else ""))


class SlurmUnsupported(SlurmoptError):
    """The running Slurm cannot do what was asked (nothing was changed).

    Example: Slurm 22.05 accepts a new GPU type for a pending job but keeps the
    old one internally, so the job would pend forever (BadConstraints).
    """

    exit_code = 7


class SolverFailed(SlurmoptError):
    """A solver cannot answer this problem (an unmodelled case); the message says why."""

    exit_code = 8


class MissingExtra(SlurmoptError):
    """This command needs an optional part of slurmopt that is not installed.

    The message names the extra to install (:mod:`slurmopt.extras`).
    """

    exit_code = 11
