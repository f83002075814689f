"""Shared fixtures for the simulator tests: small samples of the real traces under tests/data.

The full traces stay in ``../shared/traces`` (benchmarks and ``tests/traces``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"
KTH_SAMPLE = DATA / "traces" / "kth-sp2-first400.swf"
ALIBABA_PODS = DATA / "traces" / "alibaba-openb_pod_list-first400.csv"
ALIBABA_GPU_NODES = DATA / "traces" / "alibaba-openb_node_list_gpu_node-first100.csv"
ALIBABA_ALL_NODES = DATA / "traces" / "alibaba-openb_node_list_all_node-first100.csv"
GAVEL = DATA / "gpu_throughputs" / "gavel_isolated_throughputs.csv"


@pytest.fixture
def kth_sample() -> Path:
    return KTH_SAMPLE
