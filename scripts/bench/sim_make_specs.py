#!/usr/bin/env python3
"""Regenerate the simulator's cluster specs in etc/clusters/ from the real data.

Usage: .venv/bin/python scripts/bench/sim_make_specs.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slurmopt.clusterspec import load_spec
from slurmopt.sim.specgen import alibaba_spec, kth_hetero_spec, thin_nodes
from slurmopt.sim.traces import read_alibaba_nodes
from slurmopt.sim.workload import load_gavel

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=ROOT / "etc" / "clusters")
    args = ap.parse_args()
    gavel = load_gavel(args.shared / "data" / "gpu_throughputs" / "gavel_isolated_throughputs.csv")
    node_csv = args.shared / "traces" / "alibaba_gpu_v2023" / "openb_node_list_all_node.csv"
    nodes = read_alibaba_nodes(node_csv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("alibaba-gpu-2023.toml", alibaba_spec(nodes, gavel, node_csv.name)),
        ("kth-sp2-hetero.toml", kth_hetero_spec(gavel)),
        ("kth-sp2-hetero-fastfirst.toml", kth_hetero_spec(gavel, fast_first=True)),
        (
            "alibaba-gpu-2023-eighth.toml",
            alibaba_spec(
                thin_nodes(nodes, 8),
                gavel,
                node_csv.name + ", every 8th node per GPU model",
                name="alibaba-gpu-2023-eighth",
            ),
        ),
    ):
        path = args.out / name
        path.write_text(text)
        spec = load_spec(path)  # validate
        print(f"{path}: {len(spec.nodes)} nodes, {len(spec.partitions)} partitions")


if __name__ == "__main__":
    main()
