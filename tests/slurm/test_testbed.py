"""The local Slurm testbed (``scripts/testbed``) against its cluster spec, for real.

The destructive checks (down, up, spec change, slurmctld stop) run on a second,
tiny testbed in a temporary directory with its own munged and ports, so the
shared testbed that other tests use is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurmopt.clusterspec import ClusterSpec, expand_hostlist, load_spec
from slurmopt.slurm.fields import parse_duration
from tests.slurm.conftest import (
    REPO,
    TESTBED,
    CtldStopped,
    JobTracker,
    active_job_ids,
    parse_env_lines,
    slurm_cmd,
    wait_for,
)

TINY_SPEC = REPO / "etc" / "testbed" / "tiny.toml"


def oneliners(kind: str, env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """``scontrol -o show KIND`` as name -> {key: value}."""
    res = subprocess.run(
        ["scontrol", "-o", "show", kind],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=True,
    )
    out: dict[str, dict[str, str]] = {}
    for line in res.stdout.splitlines():
        # values may contain spaces (Reason=...): split on " Key=" boundaries
        fields = dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", line))
        name = fields.get("NodeName") or fields.get("PartitionName")
        if name:
            out[name] = fields
    return out


def limit(value: str) -> int | None:
    return None if value in {"UNLIMITED", "INFINITE", "NONE"} else int(value)


def time_limit(value: str) -> int | None:
    return None if value == "NONE" else parse_duration(value)


def test_nodes_match_spec(cluster_spec: ClusterSpec) -> None:
    nodes = oneliners("nodes")
    assert set(nodes) == {n.name for n in cluster_spec.nodes}
    for spec in cluster_spec.nodes:
        got = nodes[spec.name]
        assert int(got["CPUTot"]) == spec.cpus, spec.name
        assert int(got["RealMemory"]) == spec.memory_mb, spec.name
        gres = "" if got["Gres"] == "(null)" else re.sub(r"\(.*?\)", "", got["Gres"])
        assert gres == spec.gres, spec.name
        features = set(got["AvailableFeatures"].split(",")) - {"(null)"}
        assert features == set(spec.features), spec.name
        base = got["State"].split("+")[0]
        assert base in {"IDLE", "MIXED", "ALLOCATED", "COMPLETING"}, (spec.name, got["State"])


def test_partitions_match_spec(cluster_spec: ClusterSpec) -> None:
    parts = oneliners("partitions")
    assert set(parts) == {p.name for p in cluster_spec.partitions}
    for spec in cluster_spec.partitions:
        got = parts[spec.name]
        assert sorted(expand_hostlist(got["Nodes"])) == sorted(spec.nodes), spec.name
        assert got["Default"] == ("YES" if spec.default else "NO"), spec.name
        assert time_limit(got["MaxTime"]) == spec.max_time_s, spec.name
        assert time_limit(got["DefaultTime"]) == spec.default_time_s, spec.name
        assert limit(got["MaxNodes"]) == spec.max_nodes, spec.name
        assert got["State"] == spec.state, spec.name
        assert int(got["PriorityTier"]) == spec.priority_tier, spec.name


def test_typed_gpu_job_runs_on_its_type_and_sees_gpus(
    cluster_spec: ClusterSpec, jobs: JobTracker, tmp_path: Path
) -> None:
    # prefer a partition that mixes GPU types: the type alone must pick the node
    def types(p: str) -> set[str]:
        part = cluster_spec.partition(p)
        return {cluster_spec.node(n).gpu_type for n in part.nodes if cluster_spec.node(n).gpus}

    gpu_parts = [p.name for p in cluster_spec.partitions if types(p.name)]
    assert gpu_parts, "the spec has no GPU partition"
    part = max(gpu_parts, key=lambda p: len(types(p)))
    gpu_type = sorted(types(part))[-1]
    out = tmp_path / "job.out"
    job = jobs.submit(
        "-p", part, f"--gres=gpu:{gpu_type}:2", "-t", "2", "-o", str(out),
        "--wrap", 'echo "CVD=$CUDA_VISIBLE_DEVICES NODE=$SLURMD_NODENAME"',
    )  # fmt: skip
    wait_for(lambda: not active_job_ids({job}), timeout=90, interval=0.5)
    text = wait_for(lambda: out.exists() and out.read_text().strip(), timeout=10)
    m = re.search(r"CVD=(\S*) NODE=(\S+)", str(text))
    assert m, text
    assert len(m.group(1).split(",")) == 2, text
    assert cluster_spec.node(m.group(2)).gpu_type == gpu_type


def test_job_tracker_cancels_what_it_submitted(cluster_spec: ClusterSpec) -> None:
    tracker = JobTracker()
    cpu = cluster_spec.default_partition
    args = ["-p", cpu.name] if cpu else []
    job = tracker.submit(*args, "-t", "5", "--wrap", "sleep 300")
    assert active_job_ids({job}) == {job}
    tracker.cleanup(timeout=60)
    assert active_job_ids({job}) == set()


def test_env_prints_eval_able_exports(slurm_env: dict[str, str]) -> None:
    res = subprocess.run(
        [sys.executable, str(TESTBED), "env"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    env = parse_env_lines(res.stdout)
    assert len(env) == len(res.stdout.strip().splitlines())  # every line is an export
    assert Path(env["SLURM_CONF"]).is_file()
    assert env == {k: slurm_env[k] for k in env}


# ---------------------------------------------------------------------------
# a second, private testbed for down / up / reconfigure


def run_testbed(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TESTBED), *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


def job_running(job_id: int) -> bool:
    res = slurm_cmd(["squeue", "-h", "-j", str(job_id), "-o", "%T"])
    return res.stdout.strip() == "RUNNING"


def processes_using(path: Path | str) -> list[int]:
    """Pids (other than this one) whose command line mentions ``path``."""
    found = []
    needle = str(path).encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if needle in (d / "cmdline").read_bytes().replace(b"\0", b" "):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


@pytest.fixture
def private_testbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("bringing up a second testbed needs root")
    root = tmp_path / "tb"
    spec = tmp_path / "tiny.toml"
    shutil.copy(TINY_SPEC, spec)
    env = dict(os.environ, SLURMOPT_TESTBED_DIR=str(root), SLURMOPT_TESTBED_SPEC=str(spec))
    env.pop("SLURMOPT_TESTBED_PORT_BASE", None)
    env["SLURM_CONF"] = str(root / "etc" / "slurm.conf")
    for key in ("SLURMOPT_TESTBED_DIR", "SLURMOPT_TESTBED_SPEC", "SLURM_CONF"):
        monkeypatch.setenv(key, env[key])
    yield env
    run_testbed(env, "down", timeout=120)


def oneliners_port(env: dict[str, str]) -> str:
    conf = Path(env["SLURM_CONF"]).read_text()
    return re.search(r"^SlurmctldPort=(\d+)", conf, re.M).group(1)  # type: ignore[union-attr]


def pid_of(root: Path, daemon: str) -> int:
    return int((root / "pids" / f"{daemon}.pid").read_text())


def test_private_testbed_up_down_reconfigure(private_testbed: dict[str, str]) -> None:
    env = private_testbed
    root = Path(env["SLURMOPT_TESTBED_DIR"])
    spec = load_spec(env["SLURMOPT_TESTBED_SPEC"])

    up = run_testbed(env, "up", "--timeout", "120")
    assert up.returncode == 0, up.stderr
    nodes = oneliners("nodes", env)
    assert set(nodes) == {n.name for n in spec.nodes}
    ctld = pid_of(root, "slurmctld")
    munged_before = pid_of(root, "munged")
    if spec.accounting:  # its own MariaDB and slurmdbd, and the cluster registered
        assert Path(f"/proc/{pid_of(root, 'mariadbd')}").exists()
        assert Path(f"/proc/{pid_of(root, 'slurmdbd')}").exists()
        cluster = slurm_cmd(
            ["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster,controlport"]
        )
        assert cluster.stdout.split() == [f"{spec.name.lower()}|{oneliners_port(env)}"]

    again = run_testbed(env, "up")  # idempotent: the same daemons
    assert again.returncode == 0, again.stderr
    assert pid_of(root, "slurmctld") == ctld

    # a changed spec restarts cleanly with the new limits
    text = Path(env["SLURMOPT_TESTBED_SPEC"]).read_text()
    assert 'max_time = "12:00:00"' in text
    spec_file = Path(env["SLURMOPT_TESTBED_SPEC"])
    spec_file.write_text(text.replace('max_time = "12:00:00"', 'max_time = "06:00:00"'))
    changed = run_testbed(env, "up", "--timeout", "120")
    assert changed.returncode == 0, changed.stderr
    assert pid_of(root, "slurmctld") != ctld
    assert pid_of(root, "munged") == munged_before  # munged is kept across a restart
    assert oneliners("partitions", env)["gpu"]["MaxTime"] == "06:00:00"

    # the ctld_stopped context manager, on this private testbed
    with CtldStopped(root) as stopped:
        assert stopped.stopped
        assert "UP" not in slurm_cmd(["scontrol", "ping"], timeout=30).stdout
    assert "UP" in slurm_cmd(["scontrol", "ping"]).stdout

    # a running job: down must leave neither its slurmstepd nor its processes behind
    marker = f"sleep {3000 + os.getpid() % 1000}.5"
    job = subprocess.run(
        ["sbatch", "--parsable", "-t", "5", "-o", "/dev/null", "--wrap", marker],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    job_id = int(job.stdout.strip().split(";")[0])
    wait_for(lambda: active_job_ids({job_id}) and job_running(job_id), timeout=60)
    wait_for(lambda: processes_using(marker), timeout=30)

    daemons = processes_using(root)  # slurmctld, slurmd x N (munged may live in /run)
    assert len(daemons) >= len(spec.nodes) + 1
    munged = pid_of(root, "munged")
    assert Path(f"/proc/{munged}").exists()
    down = run_testbed(env, "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert processes_using(root) == []
    assert processes_using(marker) == []
    assert not Path(f"/proc/{munged}").exists() or "Z" in Path(f"/proc/{munged}/stat").read_text()
    assert not list((root / "pids").glob("*.pid"))
    status = run_testbed(env, "status")
    assert status.returncode != 0
    assert "not reachable" in status.stdout

    back = run_testbed(env, "up", "--timeout", "120")
    assert back.returncode == 0, back.stderr
    assert set(oneliners("nodes", env)) == {n.name for n in spec.nodes}

    # the minimal case: no slurmdbd, no MariaDB; kept by a later plain `up`
    plain = run_testbed(env, "up", "--no-accounting", "--timeout", "120")
    assert plain.returncode == 0, plain.stderr
    conf = (root / "etc" / "slurm.conf").read_text()
    assert "AccountingStorageType=accounting_storage/none" in conf
    assert not (root / "pids" / "mariadbd.pid").exists()
    assert not (root / "pids" / "slurmdbd.pid").exists()
    again = run_testbed(env, "up")
    assert again.returncode == 0, again.stderr
    assert "accounting off" in again.stderr
