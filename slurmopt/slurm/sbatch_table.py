"""The table of sbatch options and input environment variables (Slurm 22.05 .. 26.05).

Standard library only. Sources: ``src/common/slurm_opt.c`` (every option's long
name, short letter and whether it takes a value: getopt's ``has_arg``) and the
``INPUT ENVIRONMENT VARIABLES`` section of ``man sbatch`` of each version.
The table is the union over versions: an option that a given Slurm lacks is
rejected by that sbatch, never by optsub.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["ENV_VARS", "OPTIONS", "Arg", "OptSpec", "by_long", "by_short", "lookup_long"]


class Arg(enum.Enum):
    """Whether an option takes a value (getopt's has_arg)."""

    NONE = 0
    REQUIRED = 1
    OPTIONAL = 2


class OptSpec(NamedTuple):
    """One sbatch option (a NamedTuple: ~10x cheaper to define than a dataclass at import)."""

    name: str
    """Canonical long name (``partition``)."""
    short: str | None
    arg: Arg
    alias_of: str | None = None
    """For deprecated spellings (``tasks-per-node``): the canonical option."""

    @property
    def canonical(self) -> str:
        return self.alias_of or self.name


# Every option sbatch accepts in 22.05 .. 26.05 (union; an option a given
# version lacks is rejected by that sbatch, not by us). Format per line:
# "long-name [short] [=|?] [>alias]"; "=" a required value, "?" an optional one.
_TABLE = """
account A =
acctg-freq =
array a =
batch =
bb =
bbf =
begin b =
chdir D =
cluster = >clusters
clusters M =
cluster-constraint =
comment =
constraint C =
container =
container-id =
contiguous
core-spec S =
cores-per-socket =
cpu-freq =
cpus-per-gpu =
cpus-per-task c =
deadline =
delay-boot =
dependency d =
distribution m =
error e =
exclude x =
exclusive ?
export =
export-file =
extra =
extra-node-info B =
get-user-env ?
gid =
gpu-bind =
gpu-freq =
gpus G =
gpus-per-node =
gpus-per-socket =
gpus-per-task =
gres =
gres-flags =
help h
hint =
hold H
ignore-pbs
input i =
job-name J =
kill-on-invalid-dep =
licenses L =
mail-type =
mail-user =
mcs-label =
mem =
mem-bind =
mem-per-cpu =
mem-per-gpu =
mincpus =
network =
nice ?
no-kill k ?
no-requeue
nodefile F =
nodelist w =
nodes N =
ntasks n =
ntasks-per-core =
ntasks-per-gpu =
ntasks-per-node =
ntasks-per-socket =
ntasks-per-tres =
oom-kill-step ?
open-mode =
output o =
overcommit O
oversubscribe s
parsable
partition p =
power =
prefer =
priority =
profile =
propagate ?
qos q =
quiet Q
reboot
requeue
reservation =
segment =
signal =
sockets-per-node =
spread-job
stepmgr
switches =
tasks-per-node = >ntasks-per-node
test-only
thread-spec =
threads-per-core =
time t =
time-min =
tmp =
tres-bind =
tres-per-task =
uid =
usage
use-min-nodes
verbose v
version V
wait W
wait-all-nodes =
wckey =
wrap =
"""


def _load_table(text: str) -> tuple[OptSpec, ...]:
    specs = []
    for line in text.strip().splitlines():
        words = line.split()
        name, short, arg, alias = words[0], None, Arg.NONE, None
        for w in words[1:]:
            if w == "=":
                arg = Arg.REQUIRED
            elif w == "?":
                arg = Arg.OPTIONAL
            elif w.startswith(">"):
                alias = w[1:]
            else:
                short = w
        specs.append(OptSpec(name, short, arg, alias))
    return tuple(specs)


OPTIONS: tuple[OptSpec, ...] = _load_table(_TABLE)
_BY_LONG: dict[str, OptSpec] = {s.name: s for s in OPTIONS}
_BY_SHORT: dict[str, OptSpec] = {s.short: s for s in OPTIONS if s.short}

# Input environment variables -> option (documented in man sbatch, 22.05 .. 26.05).
ENV_VARS: dict[str, str] = {
    "SBATCH_ACCOUNT": "account",
    "SBATCH_ACCTG_FREQ": "acctg-freq",
    "SBATCH_ARRAY_INX": "array",
    "SBATCH_BATCH": "batch",
    "SBATCH_CLUSTERS": "clusters",
    "SLURM_CLUSTERS": "clusters",
    "SBATCH_CLUSTER_CONSTRAINT": "cluster-constraint",
    "SBATCH_CONSTRAINT": "constraint",
    "SBATCH_CONTAINER": "container",
    "SBATCH_CONTAINER_ID": "container-id",
    "SBATCH_CORE_SPEC": "core-spec",
    "SBATCH_CPUS_PER_GPU": "cpus-per-gpu",
    "SBATCH_CPU_FREQ_REQ": "cpu-freq",
    "SBATCH_DEBUG": "verbose",
    "SBATCH_DELAY_BOOT": "delay-boot",
    "SBATCH_DISTRIBUTION": "distribution",
    "SBATCH_ERROR": "error",
    "SBATCH_EXCLUSIVE": "exclusive",
    "SBATCH_EXPORT": "export",
    "SBATCH_GET_USER_ENV": "get-user-env",
    "SBATCH_GPU_BIND": "gpu-bind",
    "SBATCH_GPU_FREQ": "gpu-freq",
    "SBATCH_GPUS": "gpus",
    "SBATCH_GPUS_PER_NODE": "gpus-per-node",
    "SBATCH_GPUS_PER_SOCKET": "gpus-per-socket",
    "SBATCH_GPUS_PER_TASK": "gpus-per-task",
    "SBATCH_GRES": "gres",
    "SBATCH_GRES_FLAGS": "gres-flags",
    "SBATCH_HINT": "hint",
    "SLURM_HINT": "hint",
    "SBATCH_IGNORE_PBS": "ignore-pbs",
    "SBATCH_INPUT": "input",
    "SBATCH_JOB_NAME": "job-name",
    "SBATCH_MEM_BIND": "mem-bind",
    "SBATCH_MEM_PER_CPU": "mem-per-cpu",
    "SBATCH_MEM_PER_GPU": "mem-per-gpu",
    "SBATCH_MEM_PER_NODE": "mem",
    "SBATCH_NETWORK": "network",
    "SBATCH_NO_KILL": "no-kill",
    "SBATCH_NO_REQUEUE": "no-requeue",
    "SBATCH_OPEN_MODE": "open-mode",
    "SBATCH_OUTPUT": "output",
    "SBATCH_OVERCOMMIT": "overcommit",
    "SBATCH_PARTITION": "partition",
    "SBATCH_POWER": "power",
    "SBATCH_PROFILE": "profile",
    "SBATCH_QOS": "qos",
    "SBATCH_REQUEUE": "requeue",
    "SBATCH_RESERVATION": "reservation",
    "SBATCH_SEGMENT_SIZE": "segment",
    "SBATCH_SIGNAL": "signal",
    "SBATCH_SPREAD_JOB": "spread-job",
    "SBATCH_THREAD_SPEC": "thread-spec",
    "SBATCH_THREADS_PER_CORE": "threads-per-core",
    "SBATCH_TIMELIMIT": "time",
    "SBATCH_TRES_PER_TASK": "tres-per-task",
    "SBATCH_USE_MIN_NODES": "use-min-nodes",
    "SBATCH_WAIT": "wait",
    "SBATCH_WAIT_ALL_NODES": "wait-all-nodes",
    "SBATCH_WCKEY": "wckey",
}
# Env-only settings (no command-line form): SBATCH_REQ_SWITCH, SBATCH_WAIT4SWITCH.
_ENV_ONLY = {"SBATCH_REQ_SWITCH": "switches-count", "SBATCH_WAIT4SWITCH": "switches-wait"}


def lookup_long(name: str) -> OptSpec | None:
    """Resolve a long option name as getopt_long does (exact, else a unique prefix).

    Returns None for an unknown or ambiguous name.
    """
    spec = _BY_LONG.get(name)
    if spec is not None or not name:
        return spec
    matches = {s.canonical: s for s in OPTIONS if s.name.startswith(name)}
    if len(matches) == 1:
        return next(iter(matches.values()))
    return None


def by_long(name: str) -> OptSpec | None:
    """The option with exactly this long name (aliases included)."""
    return _BY_LONG.get(name)


def by_short(letter: str) -> OptSpec | None:
    """The option with this short letter."""
    return _BY_SHORT.get(letter)
