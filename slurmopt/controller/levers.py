"""Ordering levers: ``Nice=`` within a band, or an absolute ``Priority=`` when configured.

Within one partition's queue, the mean completion time is smallest when
shorter jobs go first (Smith's rule, shortest processing time first). The
controller applies that order to the managed jobs it keeps in a partition:

* ``nice_band = [lo, hi]`` (not ``[0, 0]``): the shortest managed job gets
  ``lo``, the longest ``hi``, the others in between by rank. Nice is the gentle
  lever: Slurm's multifactor priority keeps aging the job.
* ``absolute_priority = true``: instead of nice, the managed jobs of a
  partition get fixed priorities ``top, top-1, ...`` in that order, ``top``
  being the highest priority among them now. This pins the priority (Slurm
  stops aging those jobs), which is why it must be enabled explicitly. Because
  the desired value is recomputed every cycle and applied where it differs, a
  priority that Slurm dropped (``scontrol hold`` then ``release`` discards an
  admin priority) is re-applied on the next cycle.

Only jobs that the cycle does not move are considered (a moved job is
ordered in its new partition on the next cycle).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from slurmopt.controller.config import ControllerConfig
from slurmopt.model import Job, SetNice, SetPriority


@dataclass(frozen=True, slots=True)
class Queued:
    """A managed pending job staying in ``partition``, with its predicted runtime there."""

    job: Job
    partition: str
    runtime_s: float


def order_changes(queued: Iterable[Queued], cfg: ControllerConfig) -> list[SetNice | SetPriority]:
    """The nice or priority changes that put each partition's managed jobs shortest-first.

    Returns only changes that differ from the job's current value; none when
    neither lever is configured.
    """
    use_nice = cfg.nice_band != (0, 0)
    if not (use_nice or cfg.absolute_priority):
        return []
    groups: dict[str, list[Queued]] = defaultdict(list)
    for q in queued:
        if q.job.pending and not q.job.held:
            groups[q.partition].append(q)
    out: list[SetNice | SetPriority] = []
    for part in sorted(groups):
        ranked = sorted(
            groups[part], key=lambda q: (q.runtime_s, q.job.submit_time or 0, q.job.job_id)
        )
        n = len(ranked)
        if cfg.absolute_priority:
            top = max(q.job.priority for q in ranked)
            for rank, q in enumerate(ranked):
                want = max(1, top - rank)
                if q.job.priority != want:
                    out.append(
                        SetPriority(
                            q.job.job_id,
                            want,
                            f"shortest first in {part}: rank {rank + 1} of {n} "
                            f"({q.runtime_s:.0f} s), priority {q.job.priority} -> {want}",
                        )
                    )
            continue
        lo, hi = cfg.nice_band
        for rank, q in enumerate(ranked):
            want = lo if n == 1 else lo + round((hi - lo) * rank / (n - 1))
            if q.job.nice != want:
                out.append(
                    SetNice(
                        q.job.job_id,
                        want,
                        f"shortest first in {part}: rank {rank + 1} of {n} "
                        f"({q.runtime_s:.0f} s), nice {q.job.nice} -> {want}",
                    )
                )
    return out
