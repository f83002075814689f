"""A PNG of one replay: wait distribution and utilization over time (matplotlib, lazy)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slurmopt.sim.run import SimResult


def plot_result(result: SimResult, path: str | Path) -> None:
    """Write ``path``: the CDF of waits and the GPU (else CPU) utilization over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    waits = np.sort(np.array([o.wait for o in result.outcomes], dtype=float))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if waits.size:
        ax1.plot(np.maximum(waits, 1.0) / 3600.0, np.arange(1, waits.size + 1) / waits.size)
    ax1.set_xscale("log")
    ax1.set_xlabel("wait (h, waits under 1 s drawn at 1 s)")
    ax1.set_ylabel("fraction of jobs")
    ax1.set_title(f"wait CDF: {result.policy}")
    ax1.grid(True, alpha=0.3)
    if result.timeline:
        t = np.array([x[0] for x in result.timeline], dtype=float)
        use_gpu = result.total_gpus > 0
        used = np.array([x[2] if use_gpu else x[1] / 1000.0 for x in result.timeline], dtype=float)
        cap = result.total_gpus if use_gpu else result.total_cpus
        # time-weighted mean per bin: the step function's integral, differenced
        seg = np.diff(t, append=t[-1])
        integral = np.concatenate(([0.0], np.cumsum(used * seg)))
        times = np.concatenate((t, [t[-1]]))
        edges = np.linspace(t[0], t[-1], min(200, max(2, len(t))) + 1)
        area = np.diff(np.interp(edges, times, integral))
        width = np.maximum(np.diff(edges), 1e-9)
        mid = (edges[:-1] + edges[1:]) / 2
        ax2.plot((mid - t[0]) / 86400.0, area / width / max(cap, 1e-9))
        ax2.set_ylabel(("GPU" if use_gpu else "CPU") + " utilization (bin mean)")
    ax2.set_xlabel("days since first submission")
    ax2.set_ylim(0, 1.05)
    ax2.set_title(f"{result.trace} on {result.cluster}")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
