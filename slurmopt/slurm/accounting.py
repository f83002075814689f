"""Slurm accounting (``sacct``): the command, its error that means "no accounting", the parser.

:meth:`slurmopt.slurm.backend.CliBackend.accounting` runs it; the history
store (:mod:`slurmopt.history.sacct`) applies the records. Without slurmdbd,
``sacct`` answers with an error that :func:`accounting_unavailable` recognizes:
then there is nothing to read (None), and the jobs that left the queue keep an
unknown final state.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from slurmopt.errors import SlurmCommandError, SlurmUnavailable
from slurmopt.model import Association, JobState, QosLimits, parse_enum
from slurmopt.slurm.fields import parse_duration
from slurmopt.slurm.runner import Runner

log = logging.getLogger(__name__)

SACCT_TIMEOUT_S = 120.0

FIELDS = (
    "JobIDRaw",
    "JobID",
    "User",
    "Account",
    "Partition",
    "State",
    "Submit",
    "Start",
    "End",
    "ElapsedRaw",
    "TimelimitRaw",
    "ExitCode",
    "AllocTRES",
    "JobName",
)
"""Columns asked for; JobName is last so a ``|`` in a name cannot shift the others."""

_NO_ACCOUNTING = re.compile(
    r"accounting storage is disabled|problem talking to the database|"
    r"slurmdbd.*(?:not running|unreachable|connection refused)|"
    r"connection refused|no such file or directory.*slurmdbd|"
    r"accounting_storage/none",
    re.IGNORECASE,
)


def sacct_argv(since: int, until: int | None = None) -> list[str]:
    """The ``sacct`` command: allocations only, all users, from ``since`` (epoch seconds)."""
    argv = [
        "sacct",
        "--parsable2",
        "--noheader",
        "--allocations",
        "--allusers",
        "--duplicates",
        "--format=" + ",".join(FIELDS),
        "--starttime=" + _slurm_time(since),
    ]
    if until is not None:
        argv.append("--endtime=" + _slurm_time(until))
    return argv


def sacct_ids_argv(job_ids: Iterable[int]) -> list[str]:
    """``sacct`` for given jobs, whatever their times.

    A window (``--starttime``) selects jobs by their *eligible* time, so a job
    cancelled while held or before its ``--begin`` time is never in it; asked by
    id, it is.
    """
    return [
        "sacct",
        "--parsable2",
        "--noheader",
        "--allocations",
        "--allusers",
        "--duplicates",
        "--format=" + ",".join(FIELDS),
        "--jobs=" + ",".join(str(i) for i in sorted(set(job_ids))),
    ]


def fetch_sacct(
    runner: Runner,
    since: int,
    until: int | None = None,
    *,
    timeout: float = SACCT_TIMEOUT_S,
    job_ids: Iterable[int] | None = None,
) -> str | None:
    """Run ``sacct`` through the Slurm runner; None when this cluster has no accounting.

    ``job_ids``: those jobs, instead of the time window.

    Raises:
        SlurmUnavailable: sacct is missing or timed out.
        SlurmCommandError: sacct failed for another reason.
    """
    argv = sacct_argv(since, until) if job_ids is None else sacct_ids_argv(job_ids)
    try:
        result = runner.run(argv, timeout=timeout, check=False)
    except SlurmUnavailable as exc:
        if accounting_unavailable(str(exc)) and "command not found" not in str(exc):
            log.warning("no Slurm accounting: %s", exc)
            return None
        raise
    if result.returncode == 0:
        return result.stdout
    text = result.stderr + result.stdout
    if accounting_unavailable(text):
        log.warning("no Slurm accounting: %s", text.strip())
        return None
    raise SlurmCommandError(argv, result.returncode, result.stderr, result.stdout)


def _slurm_time(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def accounting_unavailable(stderr: str) -> bool:
    """True when ``sacct``'s error text says there is no accounting to ask."""
    return bool(_NO_ACCOUNTING.search(stderr))


@dataclass(frozen=True, slots=True)
class SacctRecord:
    """One allocation line of ``sacct``."""

    job_id: int
    display_id: str
    user: str
    account: str | None
    partition: str | None
    state: JobState
    state_detail: str
    submit: int | None
    start: int | None
    end: int | None
    elapsed_s: int | None
    time_limit_s: int | None
    exit_code: str | None
    name: str
    gpus: int = 0
    """GPUs allocated (``gres/gpu=N`` in AllocTRES: only with
    ``AccountingStorageTRES=gres/gpu``; 0 otherwise or when never allocated)."""

    @property
    def ran(self) -> bool:
        """False for a job that never started (sacct gives a cancelled pending job
        its cancel time as Start, with no elapsed time)."""
        return self.start is not None and not (
            self.state is JobState.CANCELLED and not self.elapsed_s
        )


def _epoch(text: str) -> int | None:
    if text in ("", "Unknown", "None", "N/A"):
        return None
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp())
    except ValueError:
        log.warning("sacct: unreadable time %r", text)
        return None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


_TYPED_GPU_TRES = re.compile(r"(?:^|,)gres/gpu:[^=,]+=(\d+)")


def gpus_from_tres(tres: str) -> int:
    """GPU count of a TRES string: ``gres/gpu=N``, else the sum of typed ``gres/gpu:T=N``."""
    plain = re.search(r"(?:^|,)gres/gpu=(\d+)", tres)
    if plain:
        return int(plain.group(1))
    return sum(int(m.group(1)) for m in _TYPED_GPU_TRES.finditer(tres))


def parse_sacct(text: str, *, delimiter: str = "|") -> list[SacctRecord]:
    """Parse ``sacct --parsable2 --noheader --format=FIELDS`` output.

    Step lines (``123.batch``) and lines that do not have the expected columns
    are skipped with a warning; ``State`` like ``CANCELLED by 1000`` keeps the
    base state and the detail.
    """
    out: list[SacctRecord] = []
    n = len(FIELDS)
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(delimiter)
        if len(parts) < n:
            log.warning("sacct: skipped a line with %d columns: %r", len(parts), line[:120])
            continue
        parts = [*parts[: n - 1], delimiter.join(parts[n - 1 :])]
        rec = dict(zip(FIELDS, parts, strict=True))
        raw = rec["JobIDRaw"]
        if "." in raw or not raw.isdigit():
            continue
        state_text = rec["State"].strip()
        base = state_text.split()[0] if state_text else "UNKNOWN"
        limit = _int(rec["TimelimitRaw"])  # minutes
        out.append(
            SacctRecord(
                job_id=int(raw),
                display_id=rec["JobID"],
                user=rec["User"],
                account=rec["Account"] or None,
                partition=rec["Partition"] or None,
                state=parse_enum(JobState, base, what="job"),
                state_detail=state_text,
                submit=_epoch(rec["Submit"]),
                start=_epoch(rec["Start"]),
                end=_epoch(rec["End"]),
                elapsed_s=_int(rec["ElapsedRaw"]),
                time_limit_s=None if limit is None else limit * 60,
                exit_code=rec["ExitCode"] or None,
                name=rec["JobName"],
                gpus=gpus_from_tres(rec["AllocTRES"]),
            )
        )
    return out


QOS_ARGV = (
    "sacctmgr",
    "-n",
    "-P",
    "show",
    "qos",
    "format=Name,MaxWall,MaxTRESPU,GrpTRES,MaxTRES,Flags",
)
"""MaxWall is MaxWallDurationPerJob, MaxTRESPU MaxTRESPerUser, MaxTRES MaxTRESPerJob."""


def parse_qos(text: str) -> tuple[QosLimits, ...]:
    """``sacctmgr -n -P show qos format=Name,MaxWall,MaxTRESPU,GrpTRES[,MaxTRES,Flags]``
    -> limits (the last two columns are optional: older recordings lack them)."""
    out: list[QosLimits] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 4 or not parts[0]:
            continue
        name, wall, per_user, grp = parts[:4]
        per_job = parts[4] if len(parts) > 4 else ""
        flags = {f.strip().lower() for f in (parts[5] if len(parts) > 5 else "").split(",")}
        out.append(
            QosLimits(
                name=name,
                max_wall_s=parse_duration(wall) if wall else None,
                max_gpus_per_user=_gpu_limit(per_user),
                grp_gpus=_gpu_limit(grp),
                max_gpus_per_job=_gpu_limit(per_job),
                over_part_qos="overpartqos" in flags,
            )
        )
    return tuple(out)


ASSOC_ARGV = (
    "sacctmgr",
    "-n",
    "-P",
    "show",
    "user",
    "withassoc",
    "format=User,DefaultAccount,Cluster,Account,Partition,DefaultQOS,QOS",
)
"""Every user's associations with the user's DefaultAccount, in one call."""


def parse_associations(text: str, cluster: str = "") -> tuple[Association, ...]:
    """``sacctmgr -n -P show user withassoc format=User,DefaultAccount,Cluster,Account,
    Partition,DefaultQOS,QOS`` -> associations (of ``cluster`` only, when given)."""
    out: list[Association] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 7 or not parts[0] or not parts[3]:
            continue
        user, default_account, clus, account, partition, def_qos, qos = parts[:7]
        if cluster and clus and clus != cluster:
            continue
        out.append(
            Association(
                user=user,
                account=account,
                default_account=default_account or None,
                default_qos=def_qos or None,
                qos=tuple(q for q in qos.split(",") if q),
                partition=partition or None,
            )
        )
    return tuple(out)


def _gpu_limit(tres: str) -> int | None:
    return gpus_from_tres(tres) if "gres/gpu" in tres else None


def _sacctmgr(runner: Runner, argv: list[str], what: str, timeout: float) -> str | None:
    try:
        result = runner.run(argv, timeout=timeout, check=False)
    except SlurmUnavailable as exc:
        log.warning("%s unavailable: %s", what, exc)
        return None
    if result.returncode != 0:
        log.warning("%s unavailable: %s", what, (result.stderr or result.stdout).strip())
        return None
    return result.stdout


def read_qos(runner: Runner, *, timeout: float = SACCT_TIMEOUT_S) -> tuple[QosLimits, ...]:
    """The QOS limits from accounting; () where there is no accounting to ask."""
    text = _sacctmgr(runner, list(QOS_ARGV), "QOS limits", timeout)
    return () if text is None else parse_qos(text)


def read_associations(
    runner: Runner, cluster: str = "", *, timeout: float = SACCT_TIMEOUT_S
) -> tuple[Association, ...]:
    """Users' associations from accounting; () where there is no accounting to ask."""
    text = _sacctmgr(runner, list(ASSOC_ARGV), "associations", timeout)
    return () if text is None else parse_associations(text, cluster)
