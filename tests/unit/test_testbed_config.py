"""scripts/testbed's pure parts: version-dependent choices and the generated Slurm config.

No Slurm needed: these guard the Debian 13 (Slurm 24.11) branches on machines
that run Debian 12, and the other way round.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from slurmopt.clusterspec import expand_hostlist, load_spec

REPO = Path(__file__).resolve().parents[2]


def _lib(name: str) -> ModuleType:
    """Import a module of ``scripts/lib`` (not a package: scripts/testbed puts it on sys.path)."""
    lib = str(REPO / "scripts" / "lib")
    sys.path.insert(0, lib)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(lib)


@pytest.fixture(scope="module")
def tb() -> ModuleType:
    return _lib("testbed_config")


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return _lib("testbed_common")


HYBRID = """\
tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0
"""
UNIFIED = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"
NONE = "proc /proc proc rw 0 0\n"


@pytest.mark.parametrize(("mounts", "host"), [(HYBRID, "v1"), (UNIFIED, "v2"), (NONE, "none")])
def test_host_cgroup(tb: ModuleType, mounts: str, host: str) -> None:
    assert tb.host_cgroup(mounts) == host


@pytest.mark.parametrize(
    ("version", "host", "plugin"),
    [
        ((22, 5, 8), "v1", "cgroup/v1"),  # Debian 12 on a v1/hybrid host
        ((22, 5, 8), "v2", "cgroup/v2"),  # Debian 12 on a unified host
        ((24, 11, 5), "v1", "disabled"),  # Debian 13
        ((24, 11, 5), "none", "disabled"),
        ((26, 5, 5), "none", "disabled"),  # sid: needs 'disabled' without cgroupfs
    ],
)
def test_cgroup_plugin(
    tb: ModuleType, version: tuple[int, int, int], host: str, plugin: str
) -> None:
    assert tb.cgroup_plugin(version, host) == plugin


def _render(
    tb: ModuleType, common: ModuleType, tmp_path: Path, cgroup: str, accounting: bool = False
) -> dict[str, str]:
    spec_path = REPO / "etc" / "testbed" / "default.toml"
    paths = common.Paths(tmp_path / "tb")
    files = tb.render(load_spec(spec_path), paths, 40000, cgroup, spec_path, accounting)
    return {p.name: text for p, text in files.items()}


def test_slurm_conf_with_accounting(tb: ModuleType, common: ModuleType, tmp_path: Path) -> None:
    spec = load_spec(REPO / "etc" / "testbed" / "default.toml")
    files = _render(tb, common, tmp_path, "disabled", accounting=True)
    kv = dict(re.findall(r"^(\w+)=(\S+)$", files["slurm.conf"], re.M))
    assert kv["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert kv["AccountingStorageTRES"] == "gres/gpu"
    assert kv["AccountingStorageEnforce"] == "associations,limits,qos"
    assert kv["PriorityType"] == "priority/multifactor" and int(kv["PriorityWeightFairshare"]) > 0
    assert kv["AccountingStoragePass"].endswith("munge.socket")  # our munged, not /run/munge
    dbd = dict(re.findall(r"^(\w+)=(\S+)$", files["slurmdbd.conf"], re.M))
    assert dbd["DbdPort"] == kv["AccountingStoragePort"]
    # own ports after the nodes' ports; MariaDB over TCP on loopback, never the system's
    node_ports = {
        int(p) for p in re.findall(r"^NodeName=\S+ .*Port=(\d+)", files["slurm.conf"], re.M)
    }
    ours = {int(dbd["DbdPort"]), int(dbd["StoragePort"])}
    assert len(ours) == 2 and not ours & node_ports and max(ours) == 40000 + len(spec.nodes) + 3
    assert dbd["StorageHost"] == "127.0.0.1" and dbd["StorageUser"] != "root"
    assert dbd["AuthInfo"] == kv["AuthInfo"]
    assert "accounting_storage/none" not in files["slurm.conf"]


def test_partition_access_rules_in_slurm_conf(
    tb: ModuleType, common: ModuleType, tmp_path: Path
) -> None:
    from slurmopt.clusterspec import parse_spec

    spec = parse_spec(
        {
            "name": "t",
            "nodes": [{"name": "n1", "cpus": 4, "memory_mb": 1000}],
            "partitions": [
                {"name": "a", "nodes": ["n1"], "allow_qos": ["high"], "qos": "high"},
                {
                    "name": "b",
                    "nodes": ["n1"],
                    "allow_accounts": ["lab"],
                    "preempt_mode": "requeue",
                },
            ],
            "accounts": [{"name": "lab"}],
            "qos": [{"name": "high"}],
        }
    )
    conf = tb.render(spec, common.Paths(tmp_path / "tb"), 40000, "disabled", tmp_path, True)
    text = next(t for p, t in conf.items() if p.name == "slurm.conf")
    assert "PartitionName=a " in text and "AllowQos=high" in text and "QOS=high" in text
    assert "AllowAccounts=lab" in text and "PreemptMode=REQUEUE" in text
    assert "PreemptType=preempt/partition_prio" in text


def test_slurm_conf_from_default_spec(tb: ModuleType, common: ModuleType, tmp_path: Path) -> None:
    spec = load_spec(REPO / "etc" / "testbed" / "default.toml")
    conf = _render(tb, common, tmp_path, "cgroup/v1")["slurm.conf"]
    kv = dict(re.findall(r"^(\w+)=(\S+)$", conf, re.M))
    assert kv["SlurmctldPort"] == "40000"
    assert kv["ClusterName"] == spec.name
    assert kv["SlurmdParameters"] == "config_overrides"
    assert kv["SelectType"] == "select/cons_tres"
    assert kv["GresTypes"] == "gpu"
    assert int(kv["DefMemPerCPU"]) > 0
    assert kv["AuthInfo"].startswith("socket=")
    assert "accounting_storage/none" in conf
    # every node once, each on its own port, with its GPUs
    node_lines = re.findall(r"^NodeName=(\S+) .*Port=(\d+).*$", conf, re.M)
    assert [n for n, _ in node_lines] == [n.name for n in spec.nodes]
    assert len({p for _, p in node_lines}) == len(spec.nodes)
    assert all(40000 < int(p) < 40000 + len(spec.nodes) + 2 for _, p in node_lines)
    assert "NodeName=gpu-h1 " in conf and "Gres=gpu:h100:8" in conf
    # partitions with their limits and node lists
    for p in spec.partitions:
        line = next(ln for ln in conf.splitlines() if ln.startswith(f"PartitionName={p.name} "))
        nodes = re.search(r"Nodes=(\S+)", line)
        assert nodes is not None
        assert sorted(expand_hostlist(nodes.group(1))) == sorted(p.nodes)
        assert ("Default=YES" in line) == p.default
        limit = "UNLIMITED" if p.max_nodes is None else str(p.max_nodes)
        assert f"MaxNodes={limit}" in line


def test_gres_and_cgroup_conf(tb: ModuleType, common: ModuleType, tmp_path: Path) -> None:
    spec = load_spec(REPO / "etc" / "testbed" / "default.toml")
    files = _render(tb, common, tmp_path, "disabled")
    gres = files["gres.conf"]
    assert "AutoDetect=off" in gres
    for n in spec.nodes:
        has = f"NodeName={n.name} Name=gpu Type={n.gpu_type} File=" in gres
        assert has == (n.gpus > 0), n.name
    assert "nvidia[0-7]" in gres  # 8 fake H100 devices
    assert files["cgroup.conf"].splitlines()[-1] == "CgroupPlugin=disabled"
    v1 = _render(tb, common, tmp_path, "cgroup/v1")["cgroup.conf"]
    assert "CgroupPlugin=cgroup/v1" in v1 and "CgroupMountpoint=/sys/fs/cgroup" in v1


def test_munge_dir_inside_unless_unreachable(common: ModuleType, tmp_path: Path) -> None:
    # munged runs as user munge: it must be able to traverse every parent directory
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    hidden = common.Paths(private / "tb")
    assert str(hidden.munge).startswith("/run/slurmopt-testbed-")
    reachable = common.Paths(Path("/tmp/slurmopt-not-created/tb"))  # /tmp is world-searchable
    assert reachable.munge == Path("/tmp/slurmopt-not-created/tb/munge")
    long = common.Paths(Path("/tmp") / ("x" * 120) / "tb")  # unix socket paths are short
    assert str(long.munge).startswith("/run/")
