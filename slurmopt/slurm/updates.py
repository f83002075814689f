"""Pure helpers for the commands that change Slurm: argv builders, answers, ids.

Kept apart from :mod:`slurmopt.slurm.backend` so that every rule learned from
real Slurm (see SLURM_NOTES.md) is a small function with table-driven tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from slurmopt.errors import SlurmParseError, SlurmUnsupported
from slurmopt.model import JobRequest
from slurmopt.slurm.versions import SlurmVersion

_EAGAIN = ("resource temporarily unavailable",)
_NOT_PENDING = (
    "no longer pending",
    "invalid job id",
    "job has already finished",
    "already completing or completed",
)


def is_eagain(stderr: str) -> bool:
    """slurmctld's transient "Resource temporarily unavailable" (nothing was applied)."""
    low = stderr.lower()
    return any(m in low for m in _EAGAIN)


def is_not_pending(stderr: str) -> bool:
    """The job started, finished or vanished: an expected outcome on a live queue."""
    low = stderr.lower()
    return any(m in low for m in _NOT_PENDING)


_PARSABLE = re.compile(r"^\s*(\d+)(?:;\S*)?\s*$")
_HUMAN = re.compile(r"Submitted batch job (\d+)")


def extract_job_id(stdout: str) -> int:
    """The job id in ``sbatch --parsable`` output, defensively.

    ``--parsable`` prints ``<id>`` or ``<id>;<cluster>``; site wrappers may add
    lines before or after, or drop ``--parsable`` (``Submitted batch job N``).
    The last id-only line wins (wrappers print banners first).

    Raises:
        SlurmParseError: no job id in the output.
    """
    ids = [int(m.group(1)) for ln in stdout.splitlines() if (m := _PARSABLE.match(ln))]
    if ids:
        return ids[-1]
    human = _HUMAN.findall(stdout)
    if human:
        return int(human[-1])
    raise SlurmParseError(f"no job id in sbatch output: {stdout.strip()[:200]!r}")


def sbatch_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` (sbatch options, script and its arguments; ``sbatch`` itself optional)
    -> the full command with ``--parsable`` right after ``sbatch``.

    ``--parsable`` goes before everything else: words after the script name are
    the script's own arguments.
    """
    args = list(argv)
    cmd = "sbatch"
    if args and (args[0] == "sbatch" or args[0].endswith("/sbatch")):
        cmd = args.pop(0)
    # A repeated --parsable is harmless; one after the script would be a script argument.
    return [cmd, "--parsable", *args]


def _gpu_item(gtype: str, count: int) -> str:
    return f"gres/gpu:{gtype}:{count}" if gtype else f"gres/gpu:{count}"


def _replace_gpu(tres: str | None, gtype: str, count: int) -> str:
    """Replace the GPU item(s) of a TRES-per-X string, keeping the others (``cpu=2``)."""
    keep = [
        x.strip()
        for x in (tres or "").split(",")
        if x.strip() and not x.strip().startswith(("gres/gpu", "gres:gpu"))
    ]
    return ",".join([*keep, _gpu_item(gtype, count)])


def gpu_update_args(request: JobRequest, gpu_type: str | None, version: SlurmVersion) -> list[str]:
    """The ``scontrol update`` words that rewrite a job's GPU request to ``gpu_type``.

    ``gpu_type``: None leaves the request alone; ``""`` makes it untyped;
    ``"h100"`` types it. Returns ``[]`` when nothing changes (no GPUs, same type).

    Per-node requests use ``Gres=gpu:TYPE:N`` (24.11 and 26.05 apply it together
    with ``Partition=`` in one call); per-job / per-task requests use
    ``TresPerJob=`` / ``TresPerTask=`` and keep their other items.

    Raises:
        SlurmUnsupported: Slurm before 23.02 (measured on 22.05.8, local testbed):
            ``Gres=gpu:h100:1`` or ``TresPerNode=gres/gpu:...`` on a pending
            ``--gres=gpu:a100:1`` job is accepted (rc 0) and shown, yet the job
            keeps its old type internally and pends forever with
            ``BadConstraints`` ("never runnable in partition h100"); untyped to
            typed is refused. So no GPU type change is attempted there.
    """
    if gpu_type is None or not request.wants_gpus:
        return []
    if (request.gpu_type or "") == gpu_type:
        return []
    if version.legacy:
        raise SlurmUnsupported(
            f"Slurm {version} cannot change a pending job's GPU type "
            f"({request.gpu_type or 'untyped'} -> {gpu_type or 'untyped'}): the job would "
            "keep its old type and pend forever (BadConstraints)"
        )
    out: list[str] = []
    if request.gpus_per_node:
        n = request.gpus_per_node
        others = [
            x.strip()[5:]
            for x in (request.gres or "").split(",")
            if x.strip().startswith(("gres/", "gres:")) and not x.strip()[5:].startswith("gpu")
        ]
        gpu = f"gpu:{gpu_type}:{n}" if gpu_type else f"gpu:{n}"
        out.append("Gres=" + ",".join([gpu, *others]))
    if request.gpus_per_job:
        out.append(
            "TresPerJob=" + _replace_gpu(request.tres_per_job, gpu_type, request.gpus_per_job)
        )
    if request.gpus_per_task:
        per_task = _replace_gpu(request.tres_per_task, gpu_type, request.gpus_per_task)
        if request.cpus_per_task > 1:
            # 23.02+ keep -c N inside TRES-per-task; replacing it must not drop it.
            per_task = f"cpu={request.cpus_per_task},{per_task}"
        out.append("TresPerTask=" + per_task)
    return out


def move_argv(
    job_id: int,
    partition: str | Sequence[str],
    *,
    request: JobRequest | None,
    gpu_type: str | None,
    version: SlurmVersion,
) -> list[str]:
    """``scontrol update JobId=N Partition=P [Gres=...]``: one call, so Slurm applies
    the partition and the GPU rewrite together (or neither)."""
    part = partition if isinstance(partition, str) else ",".join(partition)
    if not part or any(c.isspace() for c in part):
        raise ValueError(f"bad partition name {part!r}")
    argv = ["scontrol", "update", f"JobId={int(job_id)}", f"Partition={part}"]
    if gpu_type is not None:
        if request is None:
            raise ValueError("rewriting the GPU type needs the job's current request")
        argv += gpu_update_args(request, gpu_type, version)
    return argv


def node_update_argv(name: str, state: str, reason: str | None = None) -> list[str]:
    """``scontrol update NodeName=X State=S [Reason=...]`` (reason is one argv word)."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"bad node name {name!r}")
    argv = ["scontrol", "update", f"NodeName={name}", f"State={state}"]
    if reason is not None:
        argv.append(f"Reason={reason}")
    return argv


def node_extra_argv(name: str, text: str) -> list[str]:
    """``scontrol update NodeName=X Extra=TEXT`` (22.05 and later; the text is one argv word)."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"bad node name {name!r}")
    return ["scontrol", "update", f"NodeName={name}", f"Extra={text}"]
