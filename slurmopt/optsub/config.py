"""optsub's settings: the ``[optsub]`` section, with defaults and environment overrides.

Standard library only. :func:`load` reads the layered configuration files
(``/etc/slurmopt``, drop-ins, the user's file, ``$SLURMOPT_CONFIG``) but only
their ``[optsub]`` table (:class:`OptsubConfig`) and ``[optimize]`` table
(:class:`~slurmopt.optimize.config.OptimizeConfig`), both validated; any
problem raises :class:`~slurmopt.errors.ConfigError`, which optsub treats as a
fail-open case: the job is submitted unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from slurmopt import configpath
from slurmopt.errors import ConfigError
from slurmopt.fsutil import read_toml
from slurmopt.optimize.config import OptimizeConfig

ENV_FAULT = "SLURMOPT_OPTSUB_FAULT"
"""Test hook: ``config``, ``state``, ``optimizer``, ``timeout`` or ``spool``: that step fails."""

Policy = Literal["completion", "start", "keep"]


@dataclass(frozen=True)
class OptsubConfig:
    """The ``[optsub]`` section."""

    enabled: bool = field(
        default=True, metadata={"help": "False: optsub forwards every submission unchanged."}
    )
    policy: Policy = field(
        default="completion",
        metadata={
            "help": "completion: earliest expected completion (start + runtime at the "
            "partition's speed); start: earliest predicted start (Slurm's own rule for "
            "a partition list); keep: never change anything. --optsub-policy overrides."
        },
    )
    respect_single_partition: bool = field(
        default=True,
        metadata={"help": "A single -p X is kept as written (False: X is only a preference)."},
    )
    no_partition: Literal["eligible", "listed", "keep"] = field(
        default="eligible",
        metadata={
            "help": "Without -p: eligible = every partition the user may use; listed = "
            "the partitions in 'partitions'; keep = leave the job to Slurm's default."
        },
    )
    partitions: tuple[str, ...] = field(
        default=(), metadata={"help": "Partitions optsub may use when no_partition = 'listed'."}
    )
    rewrite_typed_gpu: bool = field(
        default=False,
        metadata={
            "help": "True: a typed GPU request may be rewritten to another type even when "
            "the user gave no partition list (see docs/optsub.md, 'pinned')."
        },
    )
    cache_path: str = field(
        default="",
        metadata={
            "help": "The controller's state cache; empty: $SLURMOPT_STATE_CACHE or "
            "/var/lib/slurmopt/state-cache.json."
        },
    )
    cache_max_age_s: float = field(
        default=120.0, metadata={"help": "Older state caches are ignored (then: live read)."}
    )
    live_read: bool = field(
        default=True, metadata={"help": "Read Slurm live when the cache is missing or stale."}
    )
    live_refresh: bool = field(
        default=True,
        metadata={
            "help": "Correct the cached state with one squeue call (jobs that ended or "
            "started since the cache was written; see docs/optsub.md)."
        },
    )
    decision_timeout_s: float = field(
        default=3.0,
        metadata={"help": "Time limit of the whole decision; past it the job goes unchanged."},
    )
    spool_dir: str = field(
        default="",
        metadata={
            "help": "Where decisions are appended (JSON lines); empty: [history] "
            "spool_dir (what the controller ingests). $SLURMOPT_SPOOL_DIR and "
            "$SLURMOPT_SPOOL override; unset everywhere: /var/spool/slurmopt when it "
            "exists, else the user's state directory. No other directory is used."
        },
    )
    submit_lock_s: float = field(
        default=0.3,
        metadata={
            "help": "Longest wait for the spool's submit lock, held from reading the state to "
            "writing the record, so that optsub runs deciding at the same moment see each "
            "other's jobs; past it optsub decides without the lock (0: no lock; see "
            "docs/optsub.md)."
        },
    )
    sbatch: str = field(default="sbatch", metadata={"help": "The real sbatch to run."})
    sbatch_timeout_s: float = field(
        default=600.0,
        metadata={"help": "Time limit of the sbatch call (not applied with --wait)."},
    )

    lookup_timeout_s: float = field(
        default=30.0,
        metadata={
            "help": "Time limit of the one squeue that finds the job by its tag when sbatch "
            "printed no id (-Q, or sbatch failed while slurmctld was slow)."
        },
    )

    def __post_init__(self) -> None:
        if self.cache_max_age_s < 0 or self.decision_timeout_s <= 0 or self.lookup_timeout_s <= 0:
            raise ValueError(
                "cache_max_age_s must be >= 0, decision_timeout_s and lookup_timeout_s > 0"
            )
        if not 0 <= self.submit_lock_s <= 5:
            raise ValueError("submit_lock_s must be between 0 and 5")


def load(
    env: Mapping[str, str] | None = None, paths: Sequence[str | os.PathLike[str]] | None = None
) -> tuple[OptsubConfig, OptimizeConfig]:
    """Read the ``[optsub]`` and ``[optimize]`` tables of the configuration files.

    The files are those of the layered configuration
    (:func:`slurmopt.configpath.search_path`: ``/etc/slurmopt/slurmopt.toml``,
    ``conf.d`` drop-ins, the user's file, then ``$SLURMOPT_CONFIG``; later files
    win key by key). Only these two sections
    are read and built: building every section (``slurmopt.config.load``) would
    import the telemetry stack on the submit path. Other sections are ignored here.

    Raises:
        ConfigError: unreadable file, invalid TOML, unknown key or wrong type.
    """
    env = os.environ if env is None else env
    if env.get(ENV_FAULT) == "config":
        raise ConfigError("injected configuration fault (SLURMOPT_OPTSUB_FAULT=config)")
    given = None if paths is None else [(os.fspath(p), False) for p in paths]
    files = configpath.search_path(env) if given is None else given
    merged: dict[str, dict[str, Any]] = {"optsub": {}, "optimize": {}}
    sources: dict[str, str] = {}
    history_spool: Any = None
    for path, required in files:
        data = read_toml(path, required=required)
        for name, table in merged.items():
            for key, value in _table(data, name, path).items():
                table[key] = value
                sources[f"{name}.{key}"] = path
        history_spool = _table(data, "history", path).get("spool_dir", history_spool)
    if "spool_dir" not in merged["optsub"] and history_spool:
        # one spool for writer and reader: the controller ingests [history] spool_dir
        merged["optsub"]["spool_dir"] = history_spool
        sources["optsub.spool_dir"] = "[history] spool_dir"
    if not sources:
        return OptsubConfig(), OptimizeConfig()
    from slurmopt.config import build_section

    oc = build_section(OptsubConfig, merged["optsub"], where="optsub", sources=sources)
    pc = build_section(OptimizeConfig, merged["optimize"], where="optimize", sources=sources)
    return oc, pc


def _table(data: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return table


def with_policy(cfg: OptsubConfig, policy: str | None) -> OptsubConfig:
    """``cfg`` with the command line's ``--optsub-policy`` applied.

    Raises:
        ConfigError: unknown policy name.
    """
    if policy is None:
        return cfg
    if policy not in ("completion", "start", "keep"):
        raise ConfigError(f"unknown --optsub-policy {policy!r} (completion, start, keep)")
    return replace(cfg, policy=policy)  # type: ignore[arg-type]
