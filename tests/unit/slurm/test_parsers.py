"""Table-driven tests for the small parsers: hostlists, GRES, durations, memory, states."""

from __future__ import annotations

import logging

import pytest

from slurmopt.errors import SlurmParseError
from slurmopt.model import JobState, NodeState
from slurmopt.slurm import fields, hostlist
from slurmopt.slurm.parse_jobs import job_state
from slurmopt.slurm.parse_nodes import node_state
from slurmopt.slurm.parse_partitions import parse_oneliner
from slurmopt.slurm.versions import SlurmVersion, parse_version


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("", []),
        ("(null)", []),
        ("cpu1", ["cpu1"]),
        ("gpu-a[1-2]", ["gpu-a1", "gpu-a2"]),
        ("gpu-a[1-2,4],cpu[01-03]", ["gpu-a1", "gpu-a2", "gpu-a4", "cpu01", "cpu02", "cpu03"]),
        ("n[8-11]", ["n8", "n9", "n10", "n11"]),
        ("n[008-010]", ["n008", "n009", "n010"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("a[1-2].dom", ["a1.dom", "a2.dom"]),
        ("x1,x1,x2", ["x1", "x2"]),
        (" a[1], b ", ["a1", "b"]),
        ("n[0]", ["n0"]),
    ],
)
def test_hostlist_expand(expr: str, names: list[str]) -> None:
    assert hostlist.expand(expr) == names


@pytest.mark.parametrize("bad", ["n[1-2", "n1-2]", "n[2-1]", "n[a-b]", "n[1,,2]"])
def test_hostlist_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        hostlist.expand(bad)


@pytest.mark.parametrize(
    "names",
    [["gpu-a1", "gpu-a2", "gpu-a4"], ["cpu01", "cpu02", "cpu03", "x"], ["n9", "n10"], ["a"]],
)
def test_hostlist_compress_round_trip(names: list[str]) -> None:
    assert sorted(hostlist.expand(hostlist.compress(names))) == sorted(names)


def test_hostlist_compress_form() -> None:
    assert hostlist.compress(["gpu-a1", "gpu-a2", "gpu-a4"]) == "gpu-a[1-2,4]"


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:0)", ["gpu:a100:2(IDX:0,2)", "gpu:v100:1(IDX:0)"]),
        ("gpu:a100:4(S:0-1),shard:8", ["gpu:a100:4(S:0-1)", "shard:8"]),
        ("gpu:h100:3(IDX:0-1,3)", ["gpu:h100:3(IDX:0-1,3)"]),
        ("", []),
        ("(null)", []),
    ],
)
def test_split_gres(text: str, items: list[str]) -> None:
    assert fields.split_gres(text) == items


@pytest.mark.parametrize(
    ("item", "parsed"),
    [
        ("gpu:a100:2(IDX:0-1)", ("gpu", "a100", 2, (0, 1))),
        ("gpu:a100:3(IDX:0,2-3)", ("gpu", "a100", 3, (0, 2, 3))),
        ("gpu:a100:0(IDX:N/A)", ("gpu", "a100", 0, ())),
        ("gpu:4(S:0-1)", ("gpu", "", 4, ())),
        ("gpu:0", ("gpu", "", 0, ())),
        ("gpu", ("gpu", "", 1, ())),
        ("gres:gpu:a100:2", ("gpu", "a100", 2, ())),
        ("gres/gpu:h100:1", ("gpu", "h100", 1, ())),
        ("gres/gpu=2", ("gpu", "", 2, ())),
        ("gres/gpu:1g.5gb:7", ("gpu", "1g.5gb", 7, ())),
        ("shard:8", ("shard", "", 8, ())),
    ],
)
def test_parse_gres_item(item: str, parsed: tuple[object, ...]) -> None:
    assert fields.parse_gres_item(item) == parsed


@pytest.mark.parametrize(
    ("text", "by_type"),
    [
        ("gpu:a100:4", {"a100": 4}),
        ("gpu:a100:2,gpu:v100:2(S:0)", {"a100": 2, "v100": 2}),
        ("gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:0),shard:4", {"a100": 2, "v100": 1}),
        ("gpu:8", {"": 8}),
        ("", {}),
        ("N/A", {}),
    ],
)
def test_gpus_by_type(text: str, by_type: dict[str, int]) -> None:
    assert fields.gpus_by_type(text) == by_type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gres:gpu:a100:2", (2, "a100")),
        ("gres/gpu:a100:2", (2, "a100")),
        ("gres/gpu:4", (4, None)),
        ("gres:gpu:4", (4, None)),
        ("cpu=2,gres/gpu:1", (1, None)),
        ("gres/gpu=1", (1, None)),
        ("cpu=2", (0, None)),
        ("gres/shard:2", (0, None)),
        ("", (0, None)),
        (None, (0, None)),
    ],
)
def test_gpu_request(text: str | None, expected: tuple[int, str | None]) -> None:
    assert fields.gpu_request(text) == expected


def test_gpu_indexes_from_detail() -> None:
    assert fields.gpu_indexes("gpu:a100:3(IDX:0,2-3),shard:1") == (0, 2, 3)


@pytest.mark.parametrize(
    ("value", "result"),
    [
        (5, 5),
        ({"set": True, "infinite": False, "number": 5}, 5),
        ({"set": False, "infinite": False, "number": 0}, None),
        ({"set": False, "infinite": True, "number": 0}, None),
        (None, None),
    ],
)
def test_opt_int(value: object, result: int | None) -> None:
    assert fields.opt_int(value) == result


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 1800),
        ({"set": True, "infinite": False, "number": 60}, 3600),
        ({"set": False, "infinite": True, "number": 0}, None),
        (None, None),
        (4294967294, None),
    ],
)
def test_minutes_to_s(value: object, seconds: int | None) -> None:
    assert fields.minutes_to_s(value) == seconds


@pytest.mark.parametrize(
    ("state", "flags", "base", "flagset"),
    [
        ("idle", ["DRAIN"], NodeState.IDLE, {"DRAIN"}),
        (["IDLE", "DRAIN"], [], NodeState.IDLE, {"DRAIN"}),
        ("mixed", [], NodeState.MIXED, set()),
        (["MIXED", "PLANNED"], [], NodeState.MIXED, {"PLANNED"}),
        (["DOWN", "NOT_RESPONDING"], [], NodeState.DOWN, {"NOT_RESPONDING"}),
        (["ALLOCATED", "COMPLETING"], [], NodeState.ALLOCATED, {"COMPLETING"}),
        ("idle+drain", [], NodeState.IDLE, {"DRAIN"}),
        (["FUTURE"], [], NodeState.FUTURE, set()),
    ],
)
def test_node_state(state: object, flags: list[str], base: NodeState, flagset: set[str]) -> None:
    assert node_state(state, flags) == (base, frozenset(flagset))


def test_unknown_node_state_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        base, flags = node_state(["BLAZING", "DRAIN"])
    assert base == NodeState.UNKNOWN and flags == {"DRAIN"}
    assert "BLAZING" in caplog.text


@pytest.mark.parametrize(
    ("value", "state"),
    [
        ("PENDING", JobState.PENDING),
        (["RUNNING"], JobState.RUNNING),
        (["PENDING", "REQUEUED"], JobState.PENDING),
        ("completed", JobState.COMPLETED),
        (["OUT_OF_MEMORY"], JobState.OUT_OF_MEMORY),
        ([], JobState.UNKNOWN),
    ],
)
def test_job_state(value: object, state: JobState) -> None:
    assert job_state(value) == state


def test_unknown_job_state_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert job_state(["TELEPORTED"]) == JobState.UNKNOWN
    assert "TELEPORTED" in caplog.text


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("slurm-wlm 22.05.8\n", SlurmVersion(22, 5, 8)),
        ("slurm 24.11.5", SlurmVersion(24, 11, 5)),
        ("slurm 23.02", SlurmVersion(23, 2, 0)),
    ],
)
def test_parse_version(text: str, version: SlurmVersion) -> None:
    assert parse_version(text) == version


def test_version_properties() -> None:
    assert SlurmVersion(22, 5, 8).legacy and SlurmVersion(22, 5, 8).json_option == "--json"
    assert not SlurmVersion(23, 2).legacy and SlurmVersion(23, 11).json_option == "--json"
    assert SlurmVersion(24, 11, 5).json_option == "--json=v0.0.42"
    assert SlurmVersion(26, 5, 5).json_option == "--json=v0.0.42"
    assert str(SlurmVersion(22, 5, 8)) == "22.05.8"
    with pytest.raises(SlurmParseError):
        parse_version("no version here")


def test_parse_oneliner_keeps_equals_and_spaces() -> None:
    kv = parse_oneliner("PartitionName=a TRES=cpu=16,mem=1G Reason=two words State=UP")
    assert kv == {
        "PartitionName": "a",
        "TRES": "cpu=16,mem=1G",
        "Reason": "two words",
        "State": "UP",
    }
