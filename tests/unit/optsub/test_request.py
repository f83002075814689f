"""GPU request items, GPU type rewriting, Slurm times and sizes, and the extracted request."""

from __future__ import annotations

import pytest

from slurmopt.optsub.request import (
    gpu_items,
    retype,
    submission,
)
from slurmopt.slurm.sbatch_args import parse


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("gres", "gpu", [(None, 1)]),
        ("gres", "gpu:2", [(None, 2)]),
        ("gres", "gpu:a100", [("a100", 1)]),
        ("gres", "gpu:a100:2", [("a100", 2)]),
        ("gres", "gres/gpu:h100:4", [("h100", 4)]),
        ("gres", "gpu:a100:1,license:2", [("a100", 1)]),
        ("gres", "shard:2", []),
        ("gpus", "2", [(None, 2)]),
        ("gpus", "a100:2", [("a100", 2)]),
        ("gpus-per-node", "h100:8", [("h100", 8)]),
        ("tres-per-task", "gres/gpu:a100:1,cpu:2", [("a100", 1)]),
    ],
)
def test_gpu_items(option: str, value: str, expected: list[tuple[str | None, int]]) -> None:
    assert [(i.gpu_type, i.number) for i in gpu_items(option, value)] == expected


@pytest.mark.parametrize(
    ("option", "value", "new"),
    [
        ("gres", "gpu:a100:2", "gpu:h100:2"),
        ("gres", "gpu:a100:2,lic:1", "gpu:h100:2,lic:1"),
        ("gres", "gres/gpu:a100", "gres/gpu:h100"),
        ("gres", "gpu:2", "gpu:2"),  # untyped stays untyped
        ("gpus", "a100:1", "h100:1"),
        ("gpus", "3", "3"),
        ("gpus-per-task", "a100:1", "h100:1"),
        ("tres-per-task", "gres/gpu:a100:1,cpu:2", "gres/gpu:h100:1,cpu:2"),
    ],
)
def test_retype(option: str, value: str, new: str) -> None:
    assert retype(option, value, "h100") == new


def test_submission_extracts_request() -> None:
    p = parse(
        [
            "-N",
            "2-4",
            "-n",
            "8",
            "-c",
            "4",
            "--mem-per-gpu=10G",
            "--gpus-per-node=a100:2",
            "-t",
            "2:00:00",
            "-A",
            "proj",
            "-q",
            "high",
            "-a",
            "0-3%1",
            "--hold",
            "--begin=now+1hour",
            "-d",
            "afterok:5",
            "--test-only",
            "--parsable",
            "-M",
            "c1",
            "-C",
            "a100|h100",
            "--exclusive",
            "-p",
            "x,y",
            "s.sh",
        ],
        {},
        None,
    )
    sub = submission(p)
    r = sub.request
    assert (r.nodes_min, r.nodes_max, r.ntasks, r.cpus_per_task) == (2, 4, 8, 4)
    assert (r.gpus_per_node, r.gpu_type, r.mem_per_gpu_mb, r.time_limit_s) == (
        2,
        "a100",
        10240,
        7200,
    )
    assert r.constraint == "a100|h100" and r.exclusive
    assert (sub.account, sub.qos, sub.array, sub.hold) == ("proj", "high", "0-3%1", True)
    assert (sub.begin, sub.dependency, sub.test_only, sub.parsable) == (
        "now+1hour",
        "afterok:5",
        True,
        True,
    )
    assert sub.clusters == "c1" and sub.partitions == ("x", "y")
    assert sub.partition_source == "cmdline"


@pytest.mark.parametrize(
    ("value", "offset"),
    [("now", 0), ("now+60", 60), ("now+1hour", 3600), ("now+2days", 172800), ("now+5m", 300)],
)
def test_parse_begin_relative(value: str, offset: int) -> None:
    from slurmopt.optsub.request import parse_begin

    assert parse_begin(value, 1000.0) == 1000.0 + offset


def test_parse_begin_other_forms() -> None:
    from slurmopt.optsub.request import parse_begin

    assert parse_begin("2030-01-01T00:00:00", 0.0) is not None
    assert parse_begin("teatime", 0.0) is None
