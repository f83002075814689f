"""``slurmopt snapshot``: the live normalized cluster state (a table, or ``--json``)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from slurmopt.model import Job, Node, Snapshot
from slurmopt.slurm.load import dump_snapshot, load_snapshot


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), *(fmt.format(*r).rstrip() for r in cells)]


def _gpu_text(free: dict[str, int], total: dict[str, int]) -> str:
    if not total:
        return "-"
    return " ".join(f"{t or 'gpu'}:{free.get(t, 0)}/{n}" for t, n in sorted(total.items()))


def _limit(seconds: int | None) -> str:
    from slurmopt.slurm.fields import format_duration

    return format_duration(seconds)


def _partition_rows(snap: Snapshot) -> list[list[object]]:
    by_name = {n.name: n for n in snap.nodes}
    rows: list[list[object]] = []
    for p in snap.partitions:
        nodes = [by_name[n] for n in p.nodes if n in by_name]
        total: dict[str, int] = {}
        free: dict[str, int] = {}
        for n in nodes:
            for t, c in n.gpus.items():
                total[t] = total.get(t, 0) + c
                if n.available:
                    free[t] = free.get(t, 0) + n.gpu_free.get(t, 0)
        pend = sum(1 for j in snap.jobs if j.pending and p.name in j.partitions)
        run = sum(1 for j in snap.jobs if j.running and p.name in j.partitions)
        rows.append(
            [
                p.name + ("*" if p.is_default else ""),
                p.state,
                f"{sum(1 for n in nodes if n.available)}/{len(nodes)}",
                f"{sum(n.cpus_free for n in nodes if n.available)}/{sum(n.cpus for n in nodes)}",
                _gpu_text(free, total),
                _limit(p.max_time_s),
                run,
                pend,
            ]
        )
    return rows


def _node_row(n: Node) -> list[object]:
    state = n.state.value + ("+" + "+".join(sorted(n.flags)) if n.flags else "")
    return [
        n.name,
        state,
        f"{n.cpus_alloc}/{n.cpus}",
        f"{n.memory_alloc_mb}/{n.memory_mb}",
        _gpu_text(n.gpu_free, dict(n.gpus)),
        ",".join(n.partitions),
        n.reason or "",
    ]


def _job_row(j: Job) -> list[object]:
    r = j.request
    gpus = r.gpus_total()
    gpu = f"{gpus}x{r.gpu_type or 'any'}" if gpus else "-"
    where = ",".join(j.nodes) if j.nodes else (j.reason or "")
    return [
        j.key,
        j.user,
        j.state.value + (" (held)" if j.held else ""),
        ",".join(j.partitions),
        r.nodes_min,
        r.cpus_min,
        gpu,
        _limit(r.time_limit_s) if r.time_limit_s is not None else "-",
        j.priority,
        where,
    ]


def render(snap: Snapshot) -> str:
    """The human-readable form of a snapshot (three tables)."""
    head = (
        f"cluster {snap.cluster_name or '?'}  slurm {snap.slurm_version or '?'}  "
        f"source {snap.source or '?'}  taken_at {snap.taken_at}"
    )
    p_hdr = ("PARTITION", "STATE", "NODES", "CPUS_FREE", "GPUS_FREE/TOTAL", "MAXTIME")
    lines = [head, "", *_table((*p_hdr, "RUNNING", "PENDING"), _partition_rows(snap)), ""]
    n_hdr = ("NODE", "STATE", "CPUS", "MEM_MB", "GPUS_FREE/TOTAL", "PARTITIONS", "REASON")
    lines += [*_table(n_hdr, [_node_row(n) for n in snap.nodes]), ""]
    active = [j for j in snap.jobs if j.state.active]
    if active:
        j_hdr = ("JOB", "USER", "STATE", "PARTITIONS", "NODES", "CPUS", "GPUS", "TIME", "PRIO")
        lines += _table((*j_hdr, "NODELIST/REASON"), [_job_row(j) for j in active])
    else:
        lines.append("no active jobs")
    return "\n".join(lines)


@click.command("snapshot")
@click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON (format 1).")
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Show a saved snapshot JSON instead of reading Slurm ('-' reads stdin).",
)
def snapshot(as_json: bool, snapshot_file: str | None) -> None:
    """Show the normalized cluster state: partitions, nodes and jobs.

    The JSON form is documented in docs/snapshot-format.md and is what
    --snapshot FILE reads back in every slurmopt command.
    """
    snap = load_snapshot(snapshot_file)
    click.echo(dump_snapshot(snap) if as_json else render(snap), nl=not as_json)


__all__ = ["render", "snapshot"]
