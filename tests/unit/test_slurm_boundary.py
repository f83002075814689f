"""Only ``slurmopt/slurm/`` builds Slurm command lines (docs/architecture.md).

Every string constant in the package outside ``slurmopt/slurm/`` that is a Slurm
command's name (or starts a command line with one) is reported; docstrings, log and
error texts are not code and are skipped by looking only at strings that are a
whole argv word. Configuration defaults are the one exception, listed below.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "slurmopt"
COMMANDS = frozenset(
    {
        "sacct",
        "sacctmgr",
        "salloc",
        "sattach",
        "sbatch",
        "sbcast",
        "scancel",
        "scontrol",
        "sdiag",
        "sinfo",
        "sprio",
        "squeue",
        "sreport",
        "srun",
        "sshare",
        "sstat",
        "strigger",
        "sview",
    }
)
# (file relative to slurmopt/, the string): configuration defaults, and names that are
# not command lines.
ALLOWED = {
    ("optsub/config.py", "sbatch"),  # [optsub] sbatch: the real sbatch to run (a config default)
    ("cli/ingest.py", "sacct"),  # the subcommand's name, ``slurmopt ingest sacct``
    ("history/observe.py", "squeue"),  # an event's source label in the history ("seen in squeue")
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def slurm_command_strings() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("slurm/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in skip or (rel, node.value) in ALLOWED:
                continue
            first, _, rest = node.value.partition(" ")
            if node.value in COMMANDS or (first in COMMANDS and rest.startswith("-")):
                found.append((rel, node.lineno, node.value))
    return found


def test_no_slurm_command_outside_the_slurm_package() -> None:
    assert slurm_command_strings() == []


def test_the_check_sees_a_command_line(tmp_path: Path) -> None:
    """The detector itself: a constant naming a command is found, a docstring is not."""
    tree = ast.parse('"""Runs squeue."""\nargv = ["scontrol", "update"]\n')
    skip = _docstrings(tree)
    consts = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
    ]
    assert [c for c in consts if c in COMMANDS] == ["scontrol"]
