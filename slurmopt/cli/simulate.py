"""``slurmopt simulate``: replay a workload trace on a cluster spec under a placement policy."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from slurmopt.errors import ConfigError

FORMATS = ("swf", "alibaba-gpu", "csv")


@dataclass(frozen=True, slots=True)
class SimulateParams:
    """The command's options, as one value."""

    trace: Path
    fmt: str
    cluster: Path
    policy: str
    controller_interval: int | None
    seed: int
    as_json: bool
    plot: Path | None
    load: float
    gpus_per_cpu: float | None
    limit: int | None
    keep_all: bool
    keep_unknown_wait: bool


def _progress_bar() -> Callable[[int, int], None] | None:
    """A callback drawing a progress line on stderr when it is a terminal (else None)."""
    if not sys.stderr.isatty():
        return None

    def draw(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        click.echo(f"\r[{bar}] {done}/{total} jobs done", err=True, nl=done >= total)

    return draw


def _fmt_h(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


@click.command("simulate")
@click.option("--trace", "trace", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="swf", show_default=True)
@click.option(
    "--cluster", required=True, type=click.Path(exists=True, path_type=Path), help="Spec TOML."
)
@click.option("--policy", default="slurm-multi", show_default=True, help="Placement policy.")
@click.option(
    "--controller-interval",
    type=click.IntRange(min=1),
    default=None,
    help="Re-place pending jobs every SEC simulated seconds (optimizer policies).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Write a PNG.")
@click.option(
    "--load",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Divide inter-arrival times by this factor (2 = twice the load).",
)
@click.option(
    "--gpus-per-cpu",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Map a CPU trace onto GPUs: each processor asks for this many GPUs.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay the first N jobs.")
@click.option("--keep-all", is_flag=True, help="No cleaning: keep every record of the trace.")
@click.option(
    "--keep-unknown-wait",
    is_flag=True,
    help="Keep jobs whose start is unknown (SWF wait -1); still drop zero runtimes.",
)
def simulate(**kwargs: object) -> None:
    """Replay a workload trace on a cluster spec with a Slurm-like FIFO + EASY scheduler.

    Prints wait, JCT, bounded slowdown, makespan, utilization and the ratio of
    mean JCT to its zero-wait lower bound. See docs/simulator.md.
    """
    params = SimulateParams(**kwargs)  # type: ignore[arg-type]
    from dataclasses import replace

    from slurmopt.clusterspec import load_spec
    from slurmopt.sim.policies import policy_names
    from slurmopt.sim.run import simulate as run_sim
    from slurmopt.sim.traces import Cleaning, read_trace
    from slurmopt.sim.workload import as_gpu_jobs, scale_load

    if params.policy not in policy_names():
        raise click.BadParameter(
            f"{params.policy!r} (one of {', '.join(policy_names())})", param_hint="--policy"
        )
    try:
        spec = load_spec(params.cluster)
        if params.keep_all:
            cleaning = Cleaning.none()
        else:
            cleaning = Cleaning(drop_never_started=not params.keep_unknown_wait)
        trace = read_trace(params.trace, params.fmt, cleaning=cleaning)
    except (ValueError, OSError) as exc:
        raise ConfigError(str(exc)) from exc
    if params.limit is not None:
        trace = replace(trace, jobs=trace.jobs[: params.limit])
    if params.gpus_per_cpu is not None:
        trace = as_gpu_jobs(trace, params.gpus_per_cpu)
    if params.load != 1.0:
        trace = scale_load(trace, params.load)
    try:
        result = run_sim(
            trace,
            spec,
            params.policy,
            seed=params.seed,
            controller_interval=params.controller_interval,
            progress=_progress_bar(),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if params.plot is not None:
        from slurmopt.sim.plot import plot_result

        plot_result(result, params.plot)
    if params.as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    m = result.metrics
    lines = [
        f"trace     {result.trace} ({len(result.outcomes)} jobs, {result.rejected} fit nowhere)",
        f"cluster   {result.cluster} ({result.total_cpus:g} CPUs, {result.total_gpus} GPUs)",
        f"policy    {result.policy} (seed {result.seed})",
        f"wait      mean {_fmt_h(m.wait.mean)}  median {_fmt_h(m.wait.median)}  "
        f"p95 {_fmt_h(m.wait.p95)}",
        f"JCT       mean {_fmt_h(m.jct.mean)}  median {_fmt_h(m.jct.median)}  "
        f"p95 {_fmt_h(m.jct.p95)}",
        f"bsld      mean {m.bounded_slowdown.mean:.2f}  p95 {m.bounded_slowdown.p95:.2f}",
        f"makespan  {_fmt_h(m.makespan)}",
        f"util      CPU {m.utilization:.3f}  GPU {m.gpu_utilization:.3f}",
        f"lower bd  mean JCT {_fmt_h(m.lower_bound_jct)}  ratio {m.ratio_to_lower_bound:.3f}",
        f"speed     {result.jobs_per_second:,.0f} jobs/s ({result.stats.wall_s:.2f} s replay)",
    ]
    click.echo("\n".join(lines))
