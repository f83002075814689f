"""A fake command runner that replays recorded Slurm outputs, keyed by argv.

It subclasses :class:`slurmopt.slurm.runner.Runner` and replaces only
``execute`` (the process start), so the real error mapping runs in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from slurmopt.slurm.runner import CommandResult, Runner

RECORDED = Path(__file__).resolve().parents[2] / "data" / "slurm-recorded"
VERSIONS = ("22.05", "24.11", "26.05")

Answer = CommandResult | Callable[[tuple[str, ...]], CommandResult] | BaseException


def ok(argv: Sequence[str], stdout: str = "") -> CommandResult:
    return CommandResult(tuple(argv), 0, stdout, "")


def fail(argv: Sequence[str], stderr: str, rc: int = 1) -> CommandResult:
    return CommandResult(tuple(argv), rc, "", stderr)


class FakeRunner(Runner):
    """Answers each argv from a table; every call is recorded in ``calls``.

    A table value is a :class:`CommandResult`, a list of them (answered in
    turn, the last one repeated), a callable ``argv -> CommandResult``, or an
    exception to raise (as the real ``execute`` does for timeouts).
    Unknown argv answer rc=1 "not recorded".
    """

    def __init__(self, table: Mapping[tuple[str, ...], object] | None = None) -> None:
        super().__init__()
        self.table: dict[tuple[str, ...], object] = dict(table or {})
        self.calls: list[tuple[str, ...]] = []
        self.inputs: list[str | None] = []

    def execute(
        self,
        argv: tuple[str, ...],
        *,
        timeout: float,
        input: str | None,
        env: Mapping[str, str],
    ) -> CommandResult:
        self.calls.append(argv)
        self.inputs.append(input)
        answer = self.table.get(argv)
        if answer is None:
            return fail(argv, f"fake: not recorded: {' '.join(argv)}")
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            result = answer(argv)
            assert isinstance(result, CommandResult)
            return result
        assert isinstance(answer, CommandResult)
        return answer


def _file(argv: Sequence[str], path: Path) -> CommandResult:
    return ok(argv, path.read_text())


RESERVATIONS = ("scontrol", "-o", "show", "reservations")


def recorded_runner(version: str, *, extra: bool = False) -> FakeRunner:
    """A runner that answers the read commands of ``version`` from the recordings.

    ``version``: "22.05", "24.11", "26.05" (26.05's pinned ``--json=v0.0.42``
    refused, so the adapter falls back to plain ``--json``: data_parser v0.0.45),
    or "26.05-v0.0.42" (26.05 answering the pinned data_parser).
    ``extra``: use the ``extra/`` recordings (drained and down nodes, array job,
    no time limit, ``--time-min``).

    24.11's plain ``--json`` output is data_parser v0.0.42 (see its ``meta``), so
    it stands for the pinned command.
    """
    base = RECORDED / version.split("-", maxsplit=1)[0]
    pin = "--json=v0.0.42"
    t: dict[tuple[str, ...], object] = {
        ("sinfo", "--version"): _file(("sinfo", "--version"), base / "version.txt"),
        # not in the recordings: the answer of every version without reservations
        RESERVATIONS: ok(RESERVATIONS, "No reservations in the system\n"),
    }
    oneliner = ("scontrol", "--all", "-o", "show", "partitions")
    t[oneliner] = _file(oneliner, base / "scontrol_show_partitions_oneliner.txt")
    if version == "22.05":
        nodes = base / ("extra/sinfo_extra.json" if extra else "sinfo.json")
        jobs = base / ("extra/squeue_extra.json" if extra else "squeue_all.json")
        t[("sinfo", "--json")] = _file(("sinfo", "--json"), nodes)
        t[("squeue", "--all", "--json")] = _file(("squeue", "--all", "--json"), jobs)
        return FakeRunner(t)
    nodes = base / ("extra/scontrol_show_nodes_extra.json" if extra else "scontrol_show_nodes.json")
    jobs = base / ("extra/squeue_extra.json" if extra else "squeue_all.json")
    parts = base / "scontrol_show_partitions.json"
    if version == "26.05-v0.0.42":
        dp = base / "data_parser_v0.0.42"
        nodes = dp / "scontrol_show_nodes_v0.0.42.json"
        parts = dp / "scontrol_show_partitions_v0.0.42.json"
        jobs = dp / "squeue_v0.0.42.json"
    reads = {
        ("scontrol", "show", "nodes"): nodes,
        ("scontrol", "--all", "show", "partitions"): parts,
        ("squeue", "--all"): jobs,
    }
    for words, path in reads.items():
        pinned = (*words, pin)
        plain = (*words, "--json")
        if version == "26.05":
            # Simulates a Slurm that no longer knows the pinned parser.
            t[pinned] = fail(pinned, f"{words[0]}: error: Unknown data_parser plugin: v0.0.42")
        else:
            t[pinned] = _file(pinned, path)
        t[plain] = _file(plain, path)
    return FakeRunner(t)
