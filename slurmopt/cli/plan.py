"""``slurmopt plan``: compute a placement plan and print it (changes nothing in Slurm)."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from slurmopt.optimize.planreport import build_report
from slurmopt.slurm.fields import format_duration


def _rel(t: float | None, now: float) -> str:
    if t is None or math.isinf(t):
        return "never"
    return "+" + format_duration(t - now)


def render(report: dict[str, Any]) -> str:
    """The human-readable plan."""
    now = float(report["now"])
    head = (
        f"plan: policy {report['policy']} (solver {report['solver']}, seed {report['seed']}), "
        f"objective {report['objective']} s ({report['objective_kind']}), "
        f"wall {report['wall_s']:.3f} s (build {report['build_s']:.3f} s, "
        f"solver {report['solver_wall_s']:.3f} s)"
    )
    st = report["stats"]
    lines = [
        head,
        f"source {report['source']}: {st.get('pending', 0)} pending, {st.get('variable', 0)} "
        f"placed by the solver, {st.get('fixed', 0)} kept, {st.get('beyond_window', 0)} beyond "
        f"the window, {st.get('unplaced', 0)} unplaceable; "
        f"{report['changed']} placed elsewhere than Slurm would",
    ]
    extra = {
        k: v
        for k, v in st.items()
        if k not in {"pending", "variable", "fixed", "beyond_window", "unplaced"}
    }
    if extra:
        lines.append("stats: " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    for job in report["jobs"]:
        tag = "" if job["variable"] else " (kept: outside the window)"
        tag += f" (Slurm: {job['slurm']})" if job["changed"] else ""
        lines += [
            "",
            f"job {job['key']} {job['name']} prio {job['priority']} "
            f"[{job['current']}] -> {job['chosen']}{tag}",
        ]
        lines.append(f"    {'PARTITION':<16} {'START':>12} {'RUNTIME':>12} {'END':>12}  NOTE")
        for c in job["candidates"]:
            mark = "*" if c["partition"] == job["chosen"] else " "
            if c["eligible"]:
                note = f"speed {c['speed']:g}" + (
                    f", gpu type -> {c['rewrite']}" if c["rewrite"] else ""
                )
                lines.append(
                    f"  {mark} {c['partition']:<16} {_rel(c['start'], now):>12} "
                    f"{format_duration(c['runtime']):>12} {_rel(c['end'], now):>12}  {note}"
                )
            else:
                lines.append(
                    f"  {mark} {c['partition']:<16} {'-':>12} {'-':>12} {'-':>12}  "
                    f"not eligible: {c['reason']}"
                )
    if report["unplaced"]:
        lines += ["", "jobs no allowed partition can ever run:"]
        lines += [f"  job {k}: {v}" for k, v in report["unplaced"].items()]
    return "\n".join(lines)


@click.command("plan")
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Plan on a saved snapshot JSON instead of the live cluster ('-' reads stdin).",
)
@click.option(
    "--policy",
    default="auto",
    show_default=True,
    help="Solver policy: auto, sa, ga, milp (exact), milp-static, lp-round, earliest-start, "
    "earliest-completion, least-loaded, round-robin, hash, current, best-greedy.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--budget",
    "budget_s",
    type=click.FloatRange(min=0.01),
    default=5.0,
    show_default=True,
    help="Solver time budget in seconds.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Extra TOML config file, read last (its [optimize] section).",
)
@click.option(
    "--changed",
    is_flag=True,
    help="List only the jobs the plan places elsewhere than Slurm would (earliest start).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (schema 1).")
def plan(
    snapshot_file: str | None,
    policy: str,
    seed: int,
    budget_s: float,
    config_file: str | None,
    changed: bool,
    as_json: bool,
) -> None:
    """Compute a placement plan: per job the chosen partition and every candidate's outlook.

    For each pending job in the window: each partition it may use, whether it
    is eligible (and if not, why), the predicted start, runtime and end there;
    the objective, solver, statistics and wall time. Changes nothing in Slurm.
    """
    report = build_report(snapshot_file, policy, seed, budget_s, config_file)
    if changed:
        report["jobs"] = [j for j in report["jobs"] if j["changed"]]
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report))


__all__ = ["build_report", "plan", "render"]
