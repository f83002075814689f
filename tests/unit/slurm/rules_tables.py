"""The agreed semantics of Slurm's time and memory strings, as tables.

Shared by the unit tests (``test_rules.py``, against ``slurmopt.slurm.fields``) and
the real-Slurm test (``tests/slurm/test_rules_sbatch.py``), which submits every
option row to the testbed's own sbatch and reads back what slurmctld stored. The
``TimeLimit=`` / ``MinMemoryNode=`` values in the comments are what sbatch 22.05.8
gave (``sbatch -H -t X`` then ``scontrol show job``).
"""

from __future__ import annotations

# sbatch -t VALUE -> seconds slurmctld stores; None: no limit; "reject": sbatch refuses it.
TIME_OPTION: list[tuple[str, int | str | None]] = [
    ("30", 1800),
    ("0:30", 60),  # seconds round up to a whole minute (TimeLimit=00:01:00)
    ("1:30", 120),  # TimeLimit=00:02:00
    ("00:00:59", 60),
    ("1:00:00", 3600),
    ("2-0", 172800),
    ("1-", 86400),  # "D-" is D days
    ("1-12:30", 131400),
    ("1-00:00:01", 86460),  # TimeLimit=1-00:01:00
    ("0", None),  # "a time limit of zero requests that no time limit be imposed"
    ("-1", None),
    ("UNLIMITED", None),
    ("unlimited", None),
    ("infinite", None),
    ("Infinite", None),
    ("1:2:3:4", "reject"),
    ("abc", "reject"),
    ("1.5", "reject"),
    (" 60", "reject"),
]

# sbatch --mem VALUE -> MiB slurmctld stores; "reject": sbatch refuses it.
MEM_OPTION: list[tuple[str, int | str]] = [
    ("100", 100),
    (" 100", 100),  # strtoll skips leading blanks
    ("1K", 1),  # K rounds up to a whole MiB (MinMemoryNode=1M)
    ("1023K", 1),
    ("1025K", 2),
    ("1KB", 1),
    ("0K", 0),
    ("0", 0),  # --mem=0: all the memory of the node
    ("2048M", 2048),
    ("8MB", 8),
    ("4G", 4096),
    ("8gb", 8192),
    ("8GB", 8192),
    ("1T", 1048576),
    ("1.5G", "reject"),
    ("0.5", "reject"),
    ("1P", "reject"),
    ("100MiB", "reject"),
    ("abc", "reject"),
]

# Durations as Slurm prints them (scontrol, sinfo, squeue) and as the cluster spec writes them.
DURATION_PRINTED: list[tuple[str | None, int | None]] = [
    ("30", 1800),
    ("30:15", 1815),
    ("01:00:00", 3600),
    ("12:00:00", 43200),
    ("2-00:00:00", 172800),
    ("1-12", 129600),
    ("1-00:30", 88200),
    ("1-2:30", 95400),
    ("0", 0),
    ("UNLIMITED", None),
    ("INFINITE", None),
    ("infinite", None),
    ("NONE", None),
    ("N/A", None),
    (None, None),
]

# Memory sizes as Slurm prints them (MiB; None: unlimited / unset).
MEM_PRINTED: list[tuple[str | None, int | None]] = [
    ("8000", 8000),
    ("8000M", 8000),
    ("8G", 8192),
    ("1.50G", 1536),  # TRES strings print decimals
    ("1T", 1048576),
    ("1K", 1),  # rounds up as sbatch does, never "unlimited"
    ("2048K", 2),
    ("0", None),
    ("UNLIMITED", None),
    (None, None),
]

# --constraint EXPR on the testbed's a100 partition (nodes: a100, ampere, nvlink, ib):
# does a node satisfy it? (sbatch --test-only -p a100 -C EXPR: "to start" or
# "Requested node configuration is not available"). None: not readable by slurmopt.
A100_FEATURES = ("a100", "ampere", "nvlink", "ib")
CONSTRAINT_ON_A100: list[tuple[str, bool | None]] = [
    ("ampere", True),
    ("hopper", False),
    ("ampere|hopper&turing", False),  # left to right: (ampere|hopper)&turing
    ("turing&hopper|ampere", True),  # (turing&hopper)|ampere
    ("ampere,nvlink", True),  # "," is AND
    ("ampere,turing", False),
    ("ampere&turing", False),
    ("[ampere|hopper]", True),
    ("(ampere|hopper)&ib", True),
    ("ampere&(hopper|turing)", False),
    ("ampere*1", True),  # counts say how many nodes, not which
    ("[ampere*1&ib*1]", True),
    ("ampere | ib", None),  # Slurm: "Invalid feature specification" (blanks)
    ("!turing", None),  # Slurm 22.05: "Invalid feature specification"
    ("ampere&", None),  # Slurm tolerates it; slurmopt does not filter on it
    ("(ampere", None),
]
