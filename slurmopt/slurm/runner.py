"""The one place where slurmopt starts Slurm commands.

Every call is an argv list (never a shell string) with a timeout. Failures are
typed: a missing command, a timeout or an unreachable controller raise
:class:`~slurmopt.errors.SlurmUnavailable`; any other non-zero exit raises
:class:`~slurmopt.errors.SlurmCommandError` carrying argv, return code and
stderr.

Tests replace the process layer by subclassing :class:`Runner` and overriding
:meth:`Runner.execute` (see ``tests/unit/slurm/fakes.py``); the error mapping
in :meth:`Runner.run` is the same code in both.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slurmopt.errors import SlurmCommandError, SlurmUnavailable

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
"""Default per-command timeout. Slurm's own MessageTimeout is 10 s by default."""

# stderr fragments that mean "the controller (or its auth) cannot be reached",
# as printed by sinfo / squeue / scontrol / sbatch. Lower case.
UNAVAILABLE_MARKERS: tuple[str, ...] = (
    "unable to contact slurm controller",
    "connection refused",
    "socket timed out",
    "slurm backup controller in standby mode",
    "zero bytes were transmitted or received",
    "communication connection failure",
    "transport endpoint is not connected",
    "unable to establish connection",
    "slurmctld is not responding",
    "could not establish a configuration source",
    "munge",
    "authentication failure",
    "protocol authentication error",
    # SLURM_UNEXPECTED_MSG_ERROR: seen from scontrol update while slurmctld restarts
    "unexpected message received",
)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command returned (a ``CompletedProcess`` without the generics)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float = 0.0


def is_unavailable_message(text: str) -> bool:
    """True if a Slurm error text says the controller cannot be reached."""
    low = text.lower()
    return any(marker in low for marker in UNAVAILABLE_MARKERS)


def check_result(result: CommandResult) -> CommandResult:
    """Return ``result`` if it succeeded, else raise the typed error for it.

    Raises:
        SlurmUnavailable: the output says the controller cannot be reached.
        SlurmCommandError: any other non-zero exit.
    """
    if result.returncode == 0:
        return result
    text = result.stderr or result.stdout
    if is_unavailable_message(text):
        raise SlurmUnavailable(
            f"{' '.join(result.argv)}: Slurm is unreachable: {text.strip() or '(no output)'}"
        )
    raise SlurmCommandError(result.argv, result.returncode, result.stderr, result.stdout)


class Runner:
    """Runs Slurm commands with a timeout and maps failures to typed errors.

    Args:
        env: variables added to the inherited environment for every command
            (for example ``{"SLURM_CONF": "/path/slurm.conf"}``).
        timeout: default timeout in seconds when a call gives none.
    """

    def __init__(
        self, env: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.env = dict(env or {})
        self.timeout = timeout

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``argv`` and return its result.

        Args:
            argv: the command and its arguments (a list, never a shell string).
            timeout: seconds before the command is killed (default: the runner's).
            input: text fed to stdin.
            env: extra environment variables for this call only.
            check: raise on a non-zero exit (default); if False, return the result
                and let the caller judge (an unreachable controller still raises).

        Raises:
            SlurmUnavailable: command missing, timed out, or controller unreachable.
            SlurmCommandError: non-zero exit (only with ``check``).
        """
        if isinstance(argv, str):
            raise TypeError("argv must be a list of arguments, not a string")
        args = tuple(str(a) for a in argv)
        if not args:
            raise ValueError("empty argv")
        limit = self.timeout if timeout is None else timeout
        merged = {**self.env, **(env or {})}
        log.debug("run %s (timeout %.1fs)", args, limit)
        result = self.execute(args, timeout=limit, input=input, env=merged)
        if result.returncode != 0:
            log.debug("%s exited %d: %s", args, result.returncode, result.stderr.strip())
        if check:
            return check_result(result)
        if result.returncode != 0 and is_unavailable_message(result.stderr or result.stdout):
            check_result(result)
        return result

    def execute(
        self,
        argv: tuple[str, ...],
        *,
        timeout: float,
        input: str | None,
        env: Mapping[str, str],
    ) -> CommandResult:
        """Start the process (the only method that touches ``subprocess``).

        Raises:
            SlurmUnavailable: the command is not installed or ran past ``timeout``.
        """
        full_env = {**os.environ, **env} if env else None
        start = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                env=full_env,
                check=False,
            )
        except FileNotFoundError as exc:
            raise SlurmUnavailable(f"{argv[0]}: command not found (is Slurm installed?)") from exc
        except PermissionError as exc:
            raise SlurmUnavailable(f"{argv[0]}: not executable: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise SlurmUnavailable(
                f"{' '.join(argv)}: no answer within {timeout:g} s (slurmctld down or overloaded?)"
            ) from exc
        return CommandResult(
            argv=argv,
            returncode=proc.returncode,
            stdout=proc.stdout or "",
            stderr=proc.stderr or "",
            duration_s=time.monotonic() - start,
        )
