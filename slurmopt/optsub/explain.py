"""Human and JSON renderings of an optsub decision (standard library only)."""

from __future__ import annotations

import json
import time
from typing import Any

from slurmopt.optsub.decide import Decision


def _dur(seconds: float | None) -> str:
    from slurmopt.slurm.fields import format_duration

    return "-" if seconds is None else format_duration(seconds)


def _rel(t: float | None, now: float) -> str:
    if t is None:
        return "-"
    delta = t - now
    return "now" if delta < 1 else "+" + _dur(delta)


def table(decision: Decision) -> str:
    """The ``--optsub-explain`` text: one line per candidate, then the verdict."""
    now = decision.now or time.time()
    head = ("", "PARTITION", "ELIGIBLE", "START", "RUNTIME", "COMPLETION", "GPU", "WHY NOT")
    rows = [head]
    for c in decision.candidates:
        gpu = c.gpu_type or "-"
        if c.rewrite_to:
            gpu = f"{c.rewrite_to} (rewritten)"
        rows.append(
            (
                "*" if c.chosen else "",
                c.partition,
                "yes" if c.eligible else "no",
                _rel(c.start, now) if c.eligible else "-",
                _dur(c.runtime) if c.eligible else "-",
                _rel(c.end, now) if c.eligible else "-",
                gpu if c.eligible else "-",
                c.reason
                or (f"may be preempted here: ranked {_dur(c.penalty)} later" if c.penalty else ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(len(widths))] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    out = [
        "optsub: candidates (times relative to now"
        + (f"; state: {decision.state_source})" if decision.state_source else ")")
    ]
    if len(rows) > 1:
        out += ["  " + line for line in lines]
    verdict = {
        "rewrite": "submitting to",
        "keep": "keeping",
        "passthrough": "submitting unchanged",
    }[decision.action]
    target = (
        f" {decision.partition}" if decision.partition and decision.action != "passthrough" else ""
    )
    out.append(f"optsub: {verdict}{target}: {decision.reason}")
    out += _limit_lines(decision)
    if decision.changes:
        out.append(
            "optsub: changed " + ", ".join(f"--{k}={v}" for k, v in decision.changes.items())
        )
    return "\n".join(out) + "\n"


def _limit_lines(decision: Decision) -> list[str]:
    """Without ``-t``: the limit the job gets in each partition, and a note when the
    chosen one gives it less than another eligible one would."""
    limits = decision.time_limits
    if not limits:
        return []

    def lim(p: str) -> str:
        v = limits.get(p)
        return "UNLIMITED" if v is None else _dur(v)

    out = [
        "optsub: no -t: Slurm gives the job the partition's DefaultTime (else MaxTime): "
        + ", ".join(f"{p} {lim(p)}" for p in limits)
        + f"; ranked as if -t were {decision.time_limit_basis}"
    ]
    chosen = decision.partition
    if decision.action == "passthrough" or chosen not in limits:
        return out

    def secs(p: str) -> float:
        v = limits.get(p)
        return float("inf") if v is None else float(v)

    longer = [
        c.partition for c in decision.candidates if c.eligible and secs(c.partition) > secs(chosen)
    ]
    if longer:
        best = max(longer, key=secs)
        out.append(
            f"optsub: note: in {chosen} the job is stopped at {lim(chosen)} "
            f"({best} would give {lim(best)}); set -t to choose your own limit"
        )
    return out


def as_json(decision: Decision, extra: dict[str, Any] | None = None) -> str:
    """The ``--optsub-json`` document (one line)."""
    d = decision.to_dict()
    d["schema"] = "slurmopt.optsub.decision/1"
    if extra:
        d.update(extra)
    return json.dumps(d, separators=(",", ":"), default=str)
