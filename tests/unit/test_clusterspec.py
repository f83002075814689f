"""slurmopt.clusterspec: hostlists, spec validation, the shipped specs."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from slurmopt.clusterspec import (
    expand_hostlist,
    load_spec,
    parse_spec,
)

SPECS = Path(__file__).resolve().parents[2] / "etc" / "testbed"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("cpu1", ["cpu1"]),
        ("gpu-h[1-2]", ["gpu-h1", "gpu-h2"]),
        ("n[01-03,7]", ["n01", "n02", "n03", "n7"]),
        ("a[1-2],b", ["a1", "a2", "b"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("x[1-2],x1", ["x1", "x2"]),
        ("gpu-a[08-10]", ["gpu-a08", "gpu-a09", "gpu-a10"]),
    ],
)
def test_expand_hostlist(expr: str, names: list[str]) -> None:
    assert expand_hostlist(expr) == names


@pytest.mark.parametrize("expr", ["a[1-2", "a1-2]", "a[2-1]", "a[x]", "a[1-2]]"])
def test_expand_hostlist_rejects(expr: str) -> None:
    with pytest.raises(ValueError):
        expand_hostlist(expr)


def _minimal() -> dict[str, Any]:
    return {
        "name": "t",
        "nodes": [
            {"name": "g[1-2]", "cpus": 8, "memory_mb": 1000, "gpus": 4, "gpu_type": "a100"},
            {"name": "h1", "cpus": 8, "memory_mb": 1000, "gpus": 2, "gpu_type": "h100"},
            {"name": "c1", "cpus": 4, "memory_mb": 500},
        ],
        "partitions": [
            {"name": "cpu", "nodes": ["c1"], "default": True},
            {"name": "gpu", "nodes": ["g[1-2]", "h1"], "max_time": "1-00:00:00", "max_nodes": 2},
        ],
        "gpu_speed": {"a100": 2, "h100": 3.0},
    }


def test_parse_minimal_spec() -> None:
    spec = parse_spec(_minimal())
    assert [n.name for n in spec.nodes] == ["g1", "g2", "h1", "c1"]
    assert spec.node("g2").gres == "gpu:a100:4"
    assert spec.node("c1").gres == ""
    gpu = spec.partition("gpu")
    assert gpu.nodes == ["g1", "g2", "h1"]
    assert gpu.max_time_s == 86400 and gpu.max_nodes == 2 and gpu.default_time_s is None
    assert spec.partition("cpu").max_time_s is None  # omitted = unlimited
    assert spec.default_partition is not None and spec.default_partition.name == "cpu"
    assert spec.gpu_speed == {"a100": 2.0, "h100": 3.0}
    # a mixed partition gets its slowest GPU type's speed; CPU partitions get none
    assert spec.partition_speed == {"gpu": 2.0}
    assert spec.gpu_types() == ["a100", "h100"]


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["nodes"][0].pop("cpus"), "cpus"),
        (lambda d: d["nodes"][0].update(cpus="8"), "cpus"),
        (lambda d: d["nodes"][0].update(gpu="x"), "gpu"),
        (lambda d: d["nodes"][2].update(name="g1"), "name"),
        (lambda d: d["partitions"][1].update(nodes=["nope1"]), "nodes"),
        (lambda d: d["partitions"][1].update(max_time="soon"), "max_time"),
        (lambda d: d["partitions"][1].update(default=True), "default"),
        (lambda d: d["partitions"][1].update(state="OPEN"), "state"),
        (lambda d: d["partitions"][1].update(max_nodes=0), "max_nodes"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["gpu_speed"].update(t4=0), "t4"),
        (lambda d: d.update(partition_speed={"nope": 1.0}), "nope"),
        (lambda d: d.update(accounting="yes"), "accounting"),
        (lambda d: d.update(accounts=[{"name": "a", "parent": "zz"}]), "parent"),
        (lambda d: d.update(accounts=[{"name": "a", "fairshare": 0}]), "fairshare"),
        (lambda d: d.update(qos=[{"name": "q", "grp_tres": "gpu:4"}]), "grp_tres"),
        (lambda d: d.update(qos=[{"name": "normal"}]), "normal"),
        (lambda d: d["partitions"][1].update(allow_qos=["nope"]), "allow_qos"),
        (lambda d: d["partitions"][1].update(deny_accounts=["nope"]), "deny_accounts"),
        (lambda d: d["partitions"][1].update(qos="nope"), "qos"),
        (lambda d: d["partitions"][1].update(preempt_mode="sometimes"), "preempt_mode"),
    ],
)
def test_invalid_specs_name_the_key(mutate: Any, key: str) -> None:
    data = copy.deepcopy(_minimal())
    mutate(data)
    with pytest.raises(ValueError, match=key):
        parse_spec(data)


def test_accounting_keys() -> None:
    data = copy.deepcopy(_minimal())
    data["accounts"] = [{"name": "lab", "fairshare": 3}, {"name": "team", "parent": "lab"}]
    data["qos"] = [{"name": "gpu4", "max_tres_per_user": "gres/gpu=4", "max_wall": "02:00:00"}]
    data["partitions"][1].update(
        allow_qos=["gpu4", "normal"], deny_accounts=["team"], allow_groups=["ml"], qos="gpu4"
    )
    data["partitions"][1]["preempt_mode"] = "requeue"
    spec = parse_spec(data)
    assert spec.accounting  # the default
    assert spec.default_account == "lab"  # none marked default: the first
    assert spec.accounts[1].parent == "lab" and spec.accounts[0].fairshare == 3
    assert spec.qos[0].max_wall_s == 7200 and spec.qos[0].max_tres_per_user == "gres/gpu=4"
    gpu = spec.partition("gpu")
    assert (gpu.allow_qos, gpu.deny_accounts, gpu.allow_groups) == (
        ["gpu4", "normal"],
        ["team"],
        ["ml"],
    )
    assert (gpu.qos, gpu.preempt_mode) == ("gpu4", "REQUEUE")
    assert not parse_spec({**_minimal(), "accounting": False}).accounting


def test_load_spec_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ValueError, match=r"bad\.toml"):
        load_spec(bad)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_specs_load(path: Path) -> None:
    spec = load_spec(path)
    raw = tomllib.loads(path.read_text())
    assert spec.name == raw["name"]
    assert len(spec.nodes) >= 3
    assert all(p.nodes for p in spec.partitions)
    # every node is reachable through some partition
    assert {n for p in spec.partitions for n in p.nodes} == {n.name for n in spec.nodes}


def test_large_spec_has_64_nodes() -> None:
    assert len(load_spec(SPECS / "large.toml").nodes) == 64


def test_default_spec_is_a_heterogeneous_gpu_cluster() -> None:
    spec = load_spec(SPECS / "default.toml")
    gpu_types_per_part = {
        p.name: {spec.node(n).gpu_type for n in p.nodes if spec.node(n).gpus}
        for p in spec.partitions
    }
    single = {frozenset(t) for t in gpu_types_per_part.values() if len(t) == 1}
    assert len(single) >= 3  # at least three GPU partitions of distinct types
    assert any(len(t) >= 2 for t in gpu_types_per_part.values())  # one overlaps two types
    default = spec.default_partition
    assert default is not None and not gpu_types_per_part[default.name]  # CPU default
    assert len({p.max_nodes for p in spec.partitions}) > 1
    assert len({p.max_time_s for p in spec.partitions}) > 1
