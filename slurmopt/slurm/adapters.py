"""Version adapters: which commands read the cluster on which Slurm, and how.

An adapter runs its commands through the one :class:`~slurmopt.slurm.runner.Runner`
and returns model objects; any failed or unreadable command raises, so a
caller never sees a partial state.
"""

from __future__ import annotations

import logging
from typing import Protocol

from slurmopt.errors import SlurmCommandError
from slurmopt.model import Job, Node, Partition
from slurmopt.slurm import parse_jobs, parse_nodes, parse_partitions
from slurmopt.slurm.runner import Runner
from slurmopt.slurm.versions import SlurmVersion

log = logging.getLogger(__name__)

PARTITIONS_TEXT_ARGV = ("scontrol", "--all", "-o", "show", "partitions")
"""``--all``: also the partitions Slurm hides from a user outside their AllowGroups (optsub
runs as the user: without it such a partition is "unknown" and the job passes through)."""


class Adapter(Protocol):
    """Reads nodes, partitions and jobs for one family of Slurm versions."""

    version: SlurmVersion

    def read_nodes(self) -> tuple[Node, ...]: ...

    def read_partitions(self, nodes: tuple[Node, ...]) -> tuple[Partition, ...]: ...

    def read_jobs(self) -> tuple[Job, ...]: ...


class LegacyAdapter:
    """Slurm before 23.02 (Debian 12's 22.05): ``sinfo --json``, oneliner partitions.

    ``--json`` there ignores ``-p``/``-j``/``-t``: always read everything and
    filter client-side (:func:`slurmopt.slurm.parse_jobs.filter_jobs`).
    """

    def __init__(self, runner: Runner, version: SlurmVersion, *, timeout: float) -> None:
        self.runner = runner
        self.version = version
        self.timeout = timeout

    def _out(self, argv: tuple[str, ...] | list[str]) -> str:
        return self.runner.run(list(argv), timeout=self.timeout).stdout

    def read_nodes(self) -> tuple[Node, ...]:
        return parse_nodes.parse_nodes_json(self._out(["sinfo", "--json"]))

    def read_partitions(self, nodes: tuple[Node, ...]) -> tuple[Partition, ...]:
        parts = parse_partitions.parse_partitions_text(self._out(PARTITIONS_TEXT_ARGV))
        return parse_partitions.resolve_nodes(parts, nodes)

    def read_jobs(self) -> tuple[Job, ...]:
        return parse_jobs.parse_jobs_json(self._out(["squeue", "--all", "--json"]))


class JsonAdapter:
    """Slurm 23.02 and later: ``scontrol show ... --json`` and ``squeue --json``.

    From 24.11 the data_parser is pinned (``--json=v0.0.42``); if Slurm refuses
    the pinned version, this adapter falls back to plain ``--json`` once and
    remembers it.
    """

    def __init__(self, runner: Runner, version: SlurmVersion, *, timeout: float) -> None:
        self.runner = runner
        self.version = version
        self.timeout = timeout
        self.json_option = version.json_option

    def _json(self, *words: str) -> str:
        argv = [*words, self.json_option]
        try:
            return self.runner.run(argv, timeout=self.timeout).stdout
        except SlurmCommandError as exc:
            if self.json_option == "--json":
                raise
            log.warning(
                "%s refused %s (%s); falling back to plain --json",
                words[0],
                self.json_option,
                exc.stderr.strip()[:120],
            )
            self.json_option = "--json"
            return self.runner.run([*words, "--json"], timeout=self.timeout).stdout

    def read_nodes(self) -> tuple[Node, ...]:
        return parse_nodes.parse_nodes_json(self._json("scontrol", "show", "nodes"))

    def read_partitions(self, nodes: tuple[Node, ...]) -> tuple[Partition, ...]:
        parts, has_flags = parse_partitions.parse_partitions_json(
            self._json("scontrol", "--all", "show", "partitions")
        )
        if not has_flags:
            # data_parser v0.0.42 shows neither Default=YES nor PreemptMode; the oneliner does
            text = self.runner.run(list(PARTITIONS_TEXT_ARGV), timeout=self.timeout).stdout
            parts = parse_partitions.apply_oneliner(parts, text)
        return parse_partitions.resolve_nodes(parts, nodes)

    def read_jobs(self) -> tuple[Job, ...]:
        return parse_jobs.parse_jobs_json(self._json("squeue", "--all"))


def adapter_for(version: SlurmVersion, runner: Runner, *, timeout: float) -> Adapter:
    """The adapter that fits ``version``."""
    if version.legacy:
        return LegacyAdapter(runner, version, timeout=timeout)
    return JsonAdapter(runner, version, timeout=timeout)
