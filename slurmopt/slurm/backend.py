"""The Slurm backend: one interface to read the cluster and to act on it.

:class:`CliBackend` drives the Slurm commands (every machine has them);
:class:`slurmopt.slurm.pyslurm_backend.PyslurmBackend` uses pyslurm where it
imports and matches the running Slurm. :func:`get_backend` picks one
(``SLURMOPT_BACKEND=cli|pyslurm`` forces it).

Every action returns an :class:`ActionResult` or raises a typed error:
:class:`~slurmopt.errors.JobNotPending` when the job started or vanished
first (an expected outcome), :class:`~slurmopt.errors.SlurmUnavailable` when
slurmctld cannot be reached, :class:`~slurmopt.errors.SlurmCommandError` when
Slurm refused the request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from slurmopt.errors import ConfigError, JobNotPending, SlurmCommandError, SlurmoptError
from slurmopt.model import (
    Association,
    Job,
    JobRequest,
    JobState,
    Node,
    Partition,
    QosLimits,
    Snapshot,
)
from slurmopt.retry import retry
from slurmopt.slurm import updates
from slurmopt.slurm.accounting import (
    SacctRecord,
    fetch_sacct,
    parse_sacct,
    read_associations,
    read_qos,
)
from slurmopt.slurm.adapters import Adapter, adapter_for
from slurmopt.slurm.parse_jobs import filter_jobs
from slurmopt.slurm.parse_reservations import RESERVATIONS_ARGV, parse_reservations_text
from slurmopt.slurm.runner import DEFAULT_TIMEOUT_S, CommandResult, Runner
from slurmopt.slurm.versions import SlurmVersion, parse_version

_R = TypeVar("_R")
log = logging.getLogger(__name__)

BACKEND_ENV = "SLURMOPT_BACKEND"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What one change did: the action, its target, the command and the tries it took."""

    action: str
    target: str
    argv: tuple[str, ...] = ()
    attempts: int = 1
    detail: str = ""


@runtime_checkable
class Backend(Protocol):
    """Read and change Slurm. Implemented by the CLI and the pyslurm backends."""

    name: str

    def version(self) -> SlurmVersion: ...

    def snapshot(self) -> Snapshot: ...

    def jobs(
        self,
        *,
        job_ids: Iterable[int] | None = None,
        partitions: Iterable[str] | None = None,
        states: Iterable[JobState] | None = None,
    ) -> tuple[Job, ...]: ...

    def job(self, job_id: int) -> Job | None: ...

    def submit(self, argv: Sequence[str], *, script: str | None = None) -> int: ...

    def move(
        self,
        job_id: int,
        partition: str | Sequence[str],
        *,
        gpu_type: str | None = None,
        current_request: JobRequest | None = None,
    ) -> ActionResult: ...

    def set_nice(self, job_id: int, nice: int) -> ActionResult: ...

    def set_priority(self, job_id: int, priority: int) -> ActionResult: ...

    def hold(self, job_id: int) -> ActionResult: ...

    def release(self, job_id: int, *, priority: int | None = None) -> ActionResult: ...

    def drain_node(self, name: str, reason: str) -> ActionResult: ...

    def resume_node(self, name: str) -> ActionResult: ...

    def set_node_extra(self, name: str, text: str) -> ActionResult: ...

    def nodes(self) -> tuple[Node, ...]: ...

    def accounting(
        self, since: int, until: int | None = None, job_ids: Collection[int] | None = None
    ) -> list[SacctRecord] | None: ...


class CliBackend:
    """The backend over ``sinfo`` / ``squeue`` / ``scontrol`` / ``sbatch``.

    Args:
        runner: the command runner (tests inject a fake one).
        timeout: seconds per read command.
        action_timeout: seconds per update / submit command.
        eagain_attempts: tries for an update that slurmctld answers with
            "Resource temporarily unavailable" (24.11 needed up to 5, 26.05 up
            to 18 on a cluster without slurmdbd).
        backoff_s: first pause between such tries; doubles up to ``backoff_max_s``.
        sleep, clock: injectable for tests.
    """

    name = "cli"

    def __init__(
        self,
        runner: Runner | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        action_timeout: float = 60.0,
        eagain_attempts: int = 30,
        backoff_s: float = 0.05,
        backoff_max_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner or Runner(timeout=timeout)
        self.timeout = timeout
        self.action_timeout = action_timeout
        self.eagain_attempts = max(1, eagain_attempts)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._clock = clock
        self._version: SlurmVersion | None = None
        self._adapter: Adapter | None = None
        self._conf: dict[str, str] | None = None
        self._early: dict[str, Any] = {}
        self.accounting_hint: tuple[tuple[QosLimits, ...], tuple[Association, ...]] | None = None
        """QOS limits and associations to use instead of reading them (optsub sets those of
        a state cache too old for the rest)."""

    # -- reading ---------------------------------------------------------------
    def version(self) -> SlurmVersion:
        """The running Slurm's version (``sinfo --version`` or ``scontrol --version``), read once.

        Raises:
            SlurmUnavailable: the command is missing or hangs.
            SlurmParseError: no version in its output.
        """
        if self._version is None:
            try:
                out = self.runner.run(["sinfo", "--version"], timeout=self.timeout).stdout
            except SlurmoptError:
                out = self.runner.run(["scontrol", "--version"], timeout=self.timeout).stdout
            self._version = parse_version(out)
            log.debug("Slurm %s", self._version)
        return self._version

    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:
            self._adapter = adapter_for(self.version(), self.runner, timeout=self.timeout)
        return self._adapter

    def snapshot(self) -> Snapshot:
        """Nodes, partitions and jobs, read in one cycle; any failed read raises.

        Raises:
            SlurmUnavailable, SlurmCommandError, SlurmParseError: a read failed.
        """
        taken = int(self._clock())
        ad = self.adapter
        hint = self.accounting_hint
        early = self._start_accounting_reads() if hint is None else None
        nodes = ad.read_nodes()
        partitions = ad.read_partitions(nodes)
        jobs = ad.read_jobs()
        reservations = parse_reservations_text(
            self.runner.run(list(RESERVATIONS_ARGV), timeout=self.timeout).stdout
        )
        qos, associations = hint or self._accounting_rules(partitions, early)
        return Snapshot(
            taken_at=taken,
            nodes=nodes,
            partitions=partitions,
            jobs=jobs,
            reservations=reservations,
            qos=qos,
            associations=associations,
            slurm_version=str(ad.version),
            cluster_name=self._cluster_name(),
            source=f"cli-{ad.version.short}",
        )

    def _start_accounting_reads(self) -> list[threading.Thread] | None:
        """Where accounting enforces limits (every snapshot then reads QOS limits), start
        both ``sacctmgr`` reads now, beside the Slurm reads: each costs about 0.2 s
        (slurmdbd answers in several small TCP writes, each waiting out a delayed ACK),
        far more than nodes, partitions and jobs together. None: read later, if needed."""
        conf = self._config()
        enforce = conf.get("AccountingStorageEnforce", "").lower()
        if "slurmdbd" not in conf.get("AccountingStorageType", "") or not (
            "limits" in enforce or "safe" in enforce
        ):
            return None
        self._early = {}

        def qos() -> None:
            self._early["qos"] = read_qos(self.runner, timeout=self.timeout)

        def assoc() -> None:
            self._early["assoc"] = read_associations(
                self.runner, self._cluster_name(), timeout=self.timeout
            )

        threads = [threading.Thread(target=f, daemon=True) for f in (qos, assoc)]
        for t in threads:
            t.start()
        return threads

    def _accounting_rules(
        self, partitions: Sequence[Partition], early: list[threading.Thread] | None = None
    ) -> tuple[tuple[QosLimits, ...], tuple[Association, ...]]:
        """QOS limits and users' associations, read only where they can matter.

        QOS limits: where a partition has a QOS, or where accounting enforces limits
        (``AccountingStorageEnforce`` with ``limits`` or ``safe``: then each job's own
        QOS limits apply). Associations (the account and QOS a job without ``-A`` /
        ``-q`` gets): with slurmdbd, where a partition restricts accounts or QOS or a
        QOS has limits. Never fails a snapshot: () where accounting does not answer.
        ``early``: the reads :meth:`_start_accounting_reads` started (both kept).
        """
        if early is not None:
            for t in early:
                t.join(self.timeout + 5)
            return self._early.get("qos", ()), self._early.get("assoc", ())
        conf = self._config()
        dbd = "slurmdbd" in conf.get("AccountingStorageType", "")
        enforce = conf.get("AccountingStorageEnforce", "").lower()
        limits = dbd and ("limits" in enforce or "safe" in enforce)
        qos: tuple[QosLimits, ...] = ()
        if limits or any(p.qos for p in partitions):
            qos = read_qos(self.runner, timeout=self.timeout)
        restricts = any(
            p.allow_accounts is not None or p.deny_accounts or p.allow_qos is not None or p.deny_qos
            for p in partitions
        )
        has_limits = any(
            q.max_wall_s is not None
            or q.max_gpus_per_user is not None
            or q.grp_gpus is not None
            or q.max_gpus_per_job is not None
            for q in qos
        )
        associations: tuple[Association, ...] = ()
        if dbd and (restricts or has_limits):
            associations = read_associations(
                self.runner, self._cluster_name(), timeout=self.timeout
            )
        return qos, associations

    def _cluster_name(self) -> str:
        """ClusterName from ``scontrol show config`` (read once; cosmetic, never fails)."""
        return self._config().get("ClusterName", "")

    def _config(self) -> dict[str, str]:
        """``scontrol show config`` as key -> value, read once; {} where it fails."""
        if self._conf is None:
            self._conf = self._read_config()
        return self._conf

    def _read_config(self) -> dict[str, str]:
        try:
            out = self.runner.run(
                ["scontrol", "show", "config"], timeout=self.timeout, check=False
            ).stdout
        except SlurmoptError:  # never fail a snapshot for it
            log.debug("scontrol show config unavailable", exc_info=True)
            return {}
        conf: dict[str, str] = {}
        for line in out.splitlines():
            key, sep, val = line.partition("=")
            if sep and key.strip():
                conf.setdefault(key.strip(), val.strip())
        return conf

    def jobs(
        self,
        *,
        job_ids: Iterable[int] | None = None,
        partitions: Iterable[str] | None = None,
        states: Iterable[JobState] | None = None,
    ) -> tuple[Job, ...]:
        """Jobs, filtered client-side (22.05 ignores squeue filters with ``--json``)."""
        return filter_jobs(
            self.adapter.read_jobs(), job_ids=job_ids, partitions=partitions, states=states
        )

    def job(self, job_id: int) -> Job | None:
        """One job (or the first record of an array), or None if Slurm no longer shows it."""
        found = [j for j in self.jobs(job_ids=[job_id]) if j.job_id == job_id]
        return found[0] if found else None

    # -- acting ----------------------------------------------------------------
    def _update(self, action: str, target: str, argv: list[str]) -> ActionResult:
        """Run an update, retrying Slurm's transient EAGAIN (a failed try applied nothing).

        Raises:
            JobNotPending: the job is no longer pending (or gone).
            SlurmCommandError: Slurm refused it, or EAGAIN persisted.
            SlurmUnavailable: slurmctld unreachable.
        """

        def once(attempt: int) -> ActionResult:
            res: CommandResult = self.runner.run(argv, timeout=self.action_timeout, check=False)
            if res.returncode == 0:
                if attempt > 1:
                    log.info("%s %s applied after %d tries (EAGAIN)", action, target, attempt)
                return ActionResult(action, target, tuple(argv), attempt, res.stdout.strip())
            text = res.stderr or res.stdout
            if updates.is_not_pending(text):
                raise JobNotPending(target, text.strip())
            raise SlurmCommandError(argv, res.returncode, res.stderr, res.stdout)

        return self._retry_eagain(once, f"{action} {target}")

    def _retry_eagain(self, once: Callable[[int], _R], what: str) -> _R:
        """``once`` retried while slurmctld answers EAGAIN (:func:`slurmopt.retry.retry`)."""
        return retry(
            once,
            transient=lambda e: (
                isinstance(e, SlurmCommandError) and updates.is_eagain(e.stderr or e.stdout)
            ),
            attempts=self.eagain_attempts,
            first_pause_s=self.backoff_s,
            max_pause_s=self.backoff_max_s,
            sleep=self._sleep,
            on_retry=lambda n, _e: log.debug("%s: EAGAIN (try %d), retrying", what, n),
        )

    def submit(self, argv: Sequence[str], *, script: str | None = None) -> int:
        """Run sbatch (``--parsable`` added) and return the new job id.

        ``argv``: sbatch options, then the script and its arguments (``sbatch``
        itself may lead). ``script``: the script text, fed on stdin when no file
        is named. Never retried: a second sbatch could submit twice.

        Raises:
            SlurmCommandError: sbatch refused the job.
            SlurmParseError: sbatch succeeded but printed no job id.
            SlurmUnavailable: slurmctld unreachable.
        """
        cmd = updates.sbatch_argv(argv)
        res = self.runner.run(cmd, timeout=self.action_timeout, input=script)
        return updates.extract_job_id(res.stdout)

    def move(
        self,
        job_id: int,
        partition: str | Sequence[str],
        *,
        gpu_type: str | None = None,
        current_request: JobRequest | None = None,
    ) -> ActionResult:
        """Move a pending job to ``partition`` (a name or a list), rewriting its GPU type.

        ``gpu_type``: None keeps the GPU request; ``"h100"`` rewrites a GPU request
        to that type; ``""`` makes it untyped. The rewrite goes in the same
        ``scontrol update`` call. Without ``current_request`` the job is read first.

        Raises:
            JobNotPending: the job started or vanished first.
            SlurmCommandError, SlurmUnavailable: as for any update.
        """
        request = current_request
        if gpu_type is not None and request is None:
            job = self.job(job_id)
            if job is None:
                raise JobNotPending(job_id, "not in squeue")
            if not job.pending:
                raise JobNotPending(job_id, f"state {job.state}")
            request = job.request
        argv = updates.move_argv(
            job_id, partition, request=request, gpu_type=gpu_type, version=self.version()
        )
        return self._update("move", str(job_id), argv)

    def set_nice(self, job_id: int, nice: int) -> ActionResult:
        """``scontrol update JobId=N Nice=V`` (admins may lower it, users only raise it)."""
        argv = ["scontrol", "update", f"JobId={int(job_id)}", f"Nice={int(nice)}"]
        return self._update("nice", str(job_id), argv)

    def set_priority(self, job_id: int, priority: int) -> ActionResult:
        """``scontrol update JobId=N Priority=P``: pins it (aging stops for that job)."""
        argv = ["scontrol", "update", f"JobId={int(job_id)}", f"Priority={int(priority)}"]
        return self._update("priority", str(job_id), argv)

    def hold(self, job_id: int) -> ActionResult:
        """``scontrol hold N`` (an admin hold when run as an administrator)."""
        return self._update("hold", str(job_id), ["scontrol", "hold", str(int(job_id))])

    def release(self, job_id: int, *, priority: int | None = None) -> ActionResult:
        """``scontrol release N``, then re-apply ``priority`` (release drops an admin priority)."""
        res = self._update("release", str(job_id), ["scontrol", "release", str(int(job_id))])
        if priority is None:
            return res
        pr = self.set_priority(job_id, priority)
        return ActionResult(
            "release", str(job_id), res.argv + pr.argv, res.attempts + pr.attempts, pr.detail
        )

    def drain_node(self, name: str, reason: str) -> ActionResult:
        """``scontrol update NodeName=X State=DRAIN Reason=...`` (Slurm requires a reason)."""
        if not reason.strip():
            raise ValueError("draining a node needs a reason")
        return self._update("drain", name, updates.node_update_argv(name, "DRAIN", reason))

    def resume_node(self, name: str) -> ActionResult:
        """``scontrol update NodeName=X State=RESUME``."""
        return self._update("resume", name, updates.node_update_argv(name, "RESUME"))

    def set_node_extra(self, name: str, text: str) -> ActionResult:
        """Write a node's ``Extra`` field (telemetry's summary), EAGAIN retried."""
        return self._update("extra", name, updates.node_extra_argv(name, text))

    def nodes(self) -> tuple[Node, ...]:
        """Every node, without the partitions and jobs of a full snapshot."""
        return tuple(self.adapter.read_nodes())

    def accounting(
        self, since: int, until: int | None = None, job_ids: Collection[int] | None = None
    ) -> list[SacctRecord] | None:
        """Allocations from Slurm accounting (``sacct``) in a window, or of ``job_ids``
        (whatever their times); None without accounting.

        Raises:
            SlurmUnavailable: sacct is missing or timed out.
            SlurmCommandError: sacct failed for another reason.
        """
        if job_ids is not None and not job_ids:
            return []
        text = fetch_sacct(self.runner, since, until, job_ids=job_ids)
        return None if text is None else parse_sacct(text)


def get_backend(
    env: Mapping[str, str] | None = None,
    *,
    runner: Runner | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Backend:
    """The backend to use: ``$SLURMOPT_BACKEND``: ``cli`` (the default), ``pyslurm``
    (forced), or ``auto`` (pyslurm when it imports and its Slurm matches the running
    one, else the CLI). pyslurm is opt-in: it does not yet pass the whole backend
    contract live (docs/slurm-versions.md).

    Raises:
        ConfigError: an unknown ``SLURMOPT_BACKEND``, or ``pyslurm`` forced where it
            cannot be used.
    """
    environ = os.environ if env is None else env
    choice = environ.get(BACKEND_ENV, "").strip().lower()
    if choice not in ("", "auto", "cli", "pyslurm"):
        raise ConfigError(f"{BACKEND_ENV}={choice!r}: expected 'cli', 'pyslurm' or 'auto'")
    cli = CliBackend(runner, timeout=timeout)
    if choice in ("", "cli"):
        return cli
    from slurmopt.slurm.pyslurm_backend import PyslurmBackend

    if choice == "pyslurm":
        return PyslurmBackend.create(forced=True)
    candidate = PyslurmBackend.create_if_matching(cli)
    return candidate if candidate is not None else cli
