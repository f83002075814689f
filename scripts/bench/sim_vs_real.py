#!/usr/bin/env python3
"""The simulator against real Slurm: replay every saved ``scripts/e2e-compare`` run.

Usage: .venv/bin/python scripts/bench/sim_vs_real.py [--json] [--launch-delay S] [RUN.json ...]
       .venv/bin/python scripts/bench/sim_vs_real.py --update-doc
       (default: every ``docs/e2e/*.json``; ``scripts/sim-vs-real`` is a wrapper;
       ``--update-doc`` rewrites the section of docs/evaluation.md, as scripts/evaluate does)

Each saved run (``docs/e2e/NAME.json``) holds its arguments, the GPU speeds and
per arm (``sbatch``, ``optsub``) every job's GPUs, reference duration
(``base_s``), partition, wait and run time, in submission order. The replay
uses the same job set:

* submit time of job ``i``: Slurm's SubmitTime after the first job's where the
  run recorded it (``submit_s``), else ``spread x i / jobs`` (what e2e-compare
  does), rounded to the second (the simulator's clock);
* runtime on a partition = ``base_s / gpu_speed`` (the job sleeps that long on
  the GPU type it runs on), the run's own ``gpu_speed``; time limit = e2e-compare's
  ``-t`` (``int(base / slowest speed / 60) + 2`` minutes);
* 2 CPUs, 2 GiB, one node, ``--gpus-per-node`` GPUs;
* the cluster: ``etc/testbed/default.toml`` restricted to the partitions the
  jobs list (``h100,a100,v100,t4``, in that order; h100 has PriorityTier 2);
* the ``sbatch`` arm is the ``slurm-multi`` policy (Slurm's rule: tier, then
  listed order); the ``optsub`` arm is ``auto`` (optsub's ranking at submission
  with :func:`slurmopt.optimize.ranking.rank_new_job`, the controller's re-plan
  at each tick), modelled as the run's slurmopt ran (``production``):

  - the optimizer's GPU speeds are the configuration's defaults (h100 3, a100 2,
    v100 1, t4 0.5: the e2e configuration sets none; the jobs sleep at the run's
    own speeds, t4 0.4): the decisions recorded in the production runs rank a
    4-minute job at 40 / 60 / 120 / 240 s;
  - predictions (runs with ``predictions`` true) are the controller's, learned
    online (``learned``: the Envelope predictor over the jobs finished by each
    tick, the time limit for jobs like none finished yet), never exact; Slurm's
    backfill plans with the time limits in every run;
  - ticks: the first with the first submission (cron starts with the run; the
    earlier script ran a cycle right after job 0), then every ``interval``
    seconds (earlier runs: ``interval`` + the cycle's own ``CYCLE_S``, since the
    script slept after each cycle);
  - production runs: optsub sees the live state (its live refresh) and the
    predictions of the last cycle, ``CYCLE_S`` after the cycle started
    (``cache_lag``); earlier runs: optsub ranks on the last cycle's snapshot
    plus its own newest ``OVERLAY_MAX`` submissions since (``stale_cache``,
    ``overlay_max``: the spool tail it reads), and the submissions due during
    a cycle inside the submission loop go out when it ends (``submit_times``);
  - the ``sim live`` column: the same without ``stale_cache`` (what the earlier
    runs' optsub would have done on the live state);
* launch delay: every job holds its nodes the run's launch excess beyond its
  sleep (``launch_s``, whole seconds; the fraction left is added to its end):
  the mean of Slurm's real run time (``EndTime - StartTime``, whole seconds)
  minus the sleep over the run's jobs, both arms (job launch, prolog, the
  script's own Python start; it grows with the host's load).
  ``--launch-delay S`` uses S for every run instead.

Prints one row per run and arm: simulated vs real mean JCT, mean wait and
makespan, the JCT error, and the share of jobs that ran on the same partition
in both; ``--json`` prints the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from slurmopt.clusterspec import parse_spec  # noqa: E402
from slurmopt.fsutil import read_toml  # noqa: E402
from slurmopt.history.predict import JobInfo  # noqa: E402
from slurmopt.optimize.config import OptimizeConfig  # noqa: E402
from slurmopt.sim.optpolicy import FinishedJob  # noqa: E402
from slurmopt.sim.run import simulate  # noqa: E402
from slurmopt.sim.traces import Trace, TraceJob  # noqa: E402

SPEC = ROOT / "etc" / "testbed" / "default.toml"
PARTS = ("h100", "a100", "v100", "t4")
E2E = ROOT / "docs" / "e2e"


def runs(paths: list[Path] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The saved runs (name, data), by name."""
    files = paths or sorted(E2E.glob("*.json"))
    return [(p.stem, json.loads(p.read_text())) for p in files]


def launch_excess(saved: list[tuple[str, dict[str, Any]]]) -> float:
    """Mean of real run time minus the sleep (base / speed), over every saved job."""
    out = []
    for _, data in saved:
        speed = data["gpu_speed"]
        for arm in data["results"].values():
            for j in arm.get("per_job", ()):  # a warm run's warm-up keeps no jobs
                sleep = max(1.0, j["base_s"] / speed[j["partition"]])
                out.append(j["run_s"] - sleep)
    return statistics.mean(out) if out else 0.0


def spec_for(gpu_speed: dict[str, float]) -> Any:
    """The testbed spec with only the listed partitions (in the jobs' order) and these speeds."""
    data = dict(read_toml(SPEC, required=True))
    by_name = {p["name"]: p for p in data["partitions"]}
    data["partitions"] = [by_name[n] for n in PARTS]
    data["gpu_speed"] = dict(gpu_speed)
    ref = [t for t, s in gpu_speed.items() if s == 1.0]
    data["reference_gpu_type"] = ref[0] if ref else min(gpu_speed, key=gpu_speed.__getitem__)
    return parse_spec(data, str(SPEC))


CYCLE_S = 2
"""Seconds a ``slurmopt controller --once`` cycle takes on the e2e testbed, from its
start to the state cache it writes, when no saved run records it (else measured:
:func:`cycle_lag`, rounded to the simulator's second)."""


CLOCK0 = 1
"""The replay's clock at the first submission. Not 0: the optimizer's code reads a
start time of 0 as unknown (``optimize.schedule._running_end``), which dropped the
predictions of the jobs started at the first second."""

OVERLAY_MAX = 30
"""Submissions optsub's spool overlay can count: it reads the last 64 KiB of its spool
file (``optsub.state.TAIL_BYTES``), about 30 decision records. Measured: in the three
contended runs without predictions the first job that queued for a full H100 partition
is the 33rd (job 32: the tail then held at most 30 of the 32 earlier records, and an
H100 job had dropped out); the production runs' recorded overlay count stops at 27-32
(:func:`overlay_counts`; the records' size varies with the code)."""


HISTORY_JOBS = 20
"""Jobs of the sbatch arm the controller's history held when the optsub arm started, in
runs whose optsub read learned limit shares from the first decision on (``[optimize]
limit_ratio``, code since 39980b5; it needs 20 finished jobs): the count is not
recorded; the recorded share is the 90th percentile of runtime / limit of the sbatch
arm's last 20 to 30 jobs (uncontended-interval60-seed1: 0.1472 for both)."""


def overlay_counts(saved: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """Per run that records decisions: the most submissions optsub's overlay counted
    ('+N newer optsub submission(s)' in a state source), the cap of its spool tail."""
    out = []
    for _, data in saved:
        ns = [
            int(m.group(1))
            for j in data["results"]["optsub"]["per_job"]
            for m in [re.search(r"\+ (\d+) newer", str(j.get("decision", {}).get("state", "")))]
            if m
        ]
        if ns:
            out.append(max(ns))
    return out


def shares_recorded(data: dict[str, Any]) -> str | None:
    """The limit shares optsub's first decision read, as its state source records them."""
    for j in data["results"]["optsub"]["per_job"]:
        m = re.search(r"\(limit shares ([^)]*)\)", str(j.get("decision", {}).get("state", "")))
        if m:
            return m.group(1)
    return None


def history_for(data: dict[str, Any], delay: float = 0.0) -> list[FinishedJob]:
    """The finished jobs the optsub arm's controller found in its history at the start.

    A warm run (``warm_seed``): the warm-up's jobs (:func:`warmup_history`). A cold run
    that records limit shares from its first decision: the sbatch arm's last
    ``HISTORY_JOBS`` (by end), which its first (observe) cycle found finished in Slurm.
    """
    if data["args"].get("warm_seed") is not None:
        return warmup_history(data, delay)
    if shares_recorded(data) is None:
        return []
    return _finished(data, data["results"]["sbatch"]["per_job"])[-HISTORY_JOBS:]


def warmup_history(data: dict[str, Any], delay: float) -> list[FinishedJob]:
    """A warm run's history: its warm-up (e2e-compare's own draw with ``warm_seed``, plain
    sbatch to completion; the JSON keeps only its figures) replayed as the sbatch arm is
    (``slurm-multi``), each job as accounting then holds it."""
    args = data["args"]
    draw = _e2e().workload(args["jobs"], args["scale"], args["warm_seed"], args["longest"])
    per = [{"gpus": g, "base_s": b} for g, b in draw]
    warm = {**data, "results": {"sbatch": {"per_job": per}}}
    res = simulate(
        trace_for(warm, delay=0.0), spec_for(data["gpu_speed"]), "slurm-multi",
        launch_s=round(delay),
    )  # fmt: skip
    ran = [
        {**j, "partition": o.partition, "wait_s": o.start - o.submit, "run_s": o.runtime,
         "submit_s": o.submit}
        for j, o in zip(per, res.outcomes, strict=True)
    ]  # fmt: skip
    return _finished(warm, ran)


def _e2e() -> Any:
    """``scripts/e2e-compare`` as a module (its workload draw)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("e2e_compare", str(ROOT / "scripts/e2e-compare"))
    spec = importlib.util.spec_from_loader("e2e_compare", loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _finished(data: dict[str, Any], per: list[dict[str, Any]]) -> list[FinishedJob]:
    """Jobs of one arm as the history holds them, oldest end first."""
    n, spread = len(per), float(data["args"]["spread"])
    slowest = min(data["gpu_speed"].values())
    speed = OptimizeConfig().gpu_speed
    ends = sorted(
        (float(j.get("submit_s", spread * i / n)) + j["wait_s"] + j["run_s"], i)
        for i, j in enumerate(per)
    )
    out = []
    for _, i in ends:
        j = per[i]
        limit = float((max(1, int(j["base_s"] / slowest / 60) + 2)) * 60)
        rt = float(j["run_s"])
        info = JobInfo(
            user="e2e",
            runtime_s=rt * speed.get(j["partition"], 1.0),
            time_limit_s=limit,
            name="slurmopt-e2e",
            cpus=2.0,
            gpus=float(j["gpus"]),
        )
        out.append(FinishedJob(info, j["partition"], rt, limit))
    return out


def production(data: dict[str, Any]) -> bool:
    """Whether the run is of the production-cadence e2e script (issue 16: the controller
    as cron in a thread of its own, optsub's live refresh); earlier runs called the
    controller between submissions and optsub ranked on the state cache alone."""
    return "predictions_default" in data["args"]


def cycle_lag(saved: list[tuple[str, dict[str, Any]]]) -> float | None:
    """The controller cycle's duration as optsub's decisions show it.

    The cron thread starts the first cycle with the first submission; the first
    decision whose recorded state source carries that cycle's predicted runtimes
    was made after the cache was written, the one before it earlier. The
    midpoint of those two submission times, median over the runs that record
    decisions (None: none does).
    """
    mids = []
    for _, data in saved:
        per = data["results"]["optsub"]["per_job"]
        n, spread = len(per), float(data["args"]["spread"])
        at = [float(j.get("submit_s", spread * i / n)) for i, j in enumerate(per)]
        for i, j in enumerate(per):
            if "predicted runtime" in str(j.get("decision", {}).get("state", "")):
                mids.append((at[i - 1] + at[i]) / 2 if i else 0.0)
                break
    return statistics.median(mids) if mids else None


def submit_times(data: dict[str, Any], cycle_s: float, arm: str = "optsub") -> list[int]:
    """When each job reached Slurm (whole seconds).

    Slurm's own SubmitTime where the run recorded it (``submit_s``, runs since
    this field; a burst stretches when submitting takes longer than its
    spacing), else ``spread x i / jobs`` (e2e-compare's schedule). In the earlier runs the
    script ran a controller cycle right after a submission whenever the last
    one was ``interval`` seconds old (the first right after job 0): the
    submissions due meanwhile went out when the cycle had finished.
    """
    args = data["args"]
    per = data["results"][arm]["per_job"]
    if all("submit_s" in j for j in per):
        return [round(float(j["submit_s"])) for j in per]
    n = len(per)
    due = [args["spread"] * i / n for i in range(n)]
    if production(data) or arm != "optsub":
        return [round(t) for t in due]
    out, free_at, last = [], 0.0, -1e9
    interval = float(args.get("interval", 10))
    for d in due:
        t = max(d, free_at)
        out.append(round(t))
        if t - last > interval:
            last = free_at = t + cycle_s
    return out


def trace_for(data: dict[str, Any], *, delay: float, submits: list[int] | None = None) -> Trace:
    """The run's job set as a trace (reference runtimes at speed 1.0; e2e's time limits)."""
    args = data["args"]
    slowest = min(data["gpu_speed"].values())
    per_job = data["results"]["sbatch"]["per_job"]
    n = len(per_job)
    jobs = []
    for i, j in enumerate(per_job):
        base = float(j["base_s"])
        limit = (max(1, int(base / slowest / 60) + 2)) * 60
        jobs.append(
            TraceJob(
                job_id=i + 1,
                submit=CLOCK0 + (submits[i] if submits else round(args["spread"] * i / n)),
                runtime=max(1, round(base + delay)),
                requested_time=limit,
                cpus=2.0,
                gpus=float(j["gpus"]),
                memory_mb=2048.0,
                nodes=1,
                user="e2e",
                name="slurmopt-e2e",
            )
        )
    return Trace(name="e2e", format="csv", jobs=tuple(jobs))


def compare(
    name: str, data: dict[str, Any], delay: float | None = None, cycle_s: int = CYCLE_S
) -> list[dict[str, Any]]:
    """Simulated vs real for both arms of one saved run (``delay``: the launch delay,
    default the run's own launch excess)."""
    if delay is None:
        delay = launch_excess([(name, data)])
    spec = spec_for(data["gpu_speed"])
    args = data["args"]
    predictions = bool(args.get("predictions")) or "predictions" in name
    interval = round(float(args.get("interval", 60)))
    prod = production(data)
    out = []
    for arm, policy in (("sbatch", "slurm-multi"), ("optsub", "auto")):
        # runtime on a partition = base / speed; each job holds its nodes the launch
        # delay longer (whole seconds in the simulator, the rest added to its end)
        submits = submit_times(data, cycle_s, arm)
        trace = trace_for(data, delay=0.0, submits=submits)
        opts: dict[str, Any] | None = None
        if policy == "auto":
            opts = {
                # the e2e configuration sets no [optimize] gpu_speed: the defaults
                "gpu_speed": dict(OptimizeConfig().gpu_speed),
                "learned": predictions,
                "stale_cache": not prod,
                "cache_lag": cycle_s if prod else 0,
                "overlay_max": None if prod else OVERLAY_MAX,
                "limit_ratio": shares_recorded(data) is not None
                or data["args"].get("warm_seed") is not None,
                "history": history_for(data, delay) if predictions else [],
            }
        choices: dict[int, str] = {}
        if opts is not None:
            opts["choices"] = choices
        kw: dict[str, Any] = {}
        if policy == "auto":
            # cron: a cycle with the first submission; earlier runs: after job 0, then
            # every interval plus the cycle's own duration
            kw = {
                "controller_interval": interval if prod else interval + cycle_s,
                "first_tick": 0,
            }
        kw["launch_s"] = held = round(delay)
        rest = delay - held
        res = simulate(trace, spec, policy, policy_options=opts, **kw)
        live = res
        if policy == "auto":
            on_live = {**(opts or {}), "stale_cache": False}
            live = simulate(trace, spec, policy, policy_options=on_live, **kw)
        outs = res.outcomes
        jct = [o.finish + rest - o.submit for o in outs]
        wait = [o.start - o.submit for o in outs]
        real = data["results"][arm]
        sim_jct = statistics.mean(jct)
        out.append(
            {
                "run": name,
                "arm": arm,
                "policy": policy,
                "interval": interval,
                "sim_jct_live": statistics.mean(o.finish + rest - o.submit for o in live.outcomes),
                "sim_jct": sim_jct,
                "real_jct": real["mean_jct_s"],
                "jct_err": (sim_jct - real["mean_jct_s"]) / real["mean_jct_s"],
                "sim_wait": statistics.mean(wait),
                "real_wait": real["mean_wait_s"],
                "sim_makespan": max(o.finish + rest for o in outs) - min(o.submit for o in outs),
                "same_partition": _same(outs, real["per_job"]),
                "decisions": _agree(choices, real["per_job"]),
                "real_makespan": real["makespan_s"],
                "sim_parts": _count(o.partition for o in outs),
                "real_parts": real["partitions"],
            }
        )
    return out


def _same(outs: list[Any], per_job: list[dict[str, Any]]) -> float:
    """Share of jobs that ran on the same partition in the replay and on real Slurm."""
    return sum(o.partition == j["partition"] for o, j in zip(outs, per_job, strict=True)) / len(
        outs
    )


def _agree(choices: dict[int, str], per_job: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(jobs whose first choice in the replay is the one optsub recorded, jobs with a
    recorded choice); None when the run records no decision."""
    recorded = {
        i + 1: j["decision"]["chosen"]
        for i, j in enumerate(per_job)
        if j.get("decision", {}).get("chosen")
    }
    if not recorded:
        return None
    return sum(choices.get(k) == v for k, v in recorded.items()), len(recorded)


def _count(names: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return dict(sorted(out.items()))


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | arm | mean JCT sim / real (s) | error | sim live state (s) "
        "| mean wait sim / real (s) | makespan sim / real (s) | jobs per partition sim / real "
        "| same partition | first choice as optsub's |",
        "|---|---|---|---:|---:|---|---|---|---:|---:|",
    ]
    for r in rows:
        dec = r.get("decisions")
        agree = f"{dec[0]} of {dec[1]}" if dec else ""
        parts = " ".join(f"{p} {n}" for p, n in r["sim_parts"].items())
        real = " ".join(f"{p} {n}" for p, n in sorted(r["real_parts"].items()))
        lines.append(
            f"| `{r['run']}` | {r['arm']} | {r['sim_jct']:.1f} / {r['real_jct']:.1f} "
            f"| {r['jct_err'] * 100:+.1f} % | {r['sim_jct_live']:.1f} "
            f"| {r['sim_wait']:.1f} / {r['real_wait']:.1f} "
            f"| {r['sim_makespan']:.0f} / {r['real_makespan']:.0f} | {parts} / {real} "
            f"| {r['same_partition'] * 100:.0f} % "
            f"| {agree} |"
        )
    return lines


def replay(
    saved: list[tuple[str, dict[str, Any]]] | None = None, launch_delay: float | None = None
) -> dict[str, Any]:
    """Replay ``saved`` (default: every saved run): the measured model parameters and rows.

    The launch excess and the controller cycle are measured on every saved run,
    whichever are replayed.
    """
    every = runs()
    saved = every if saved is None else saved
    excess = {name: launch_excess([(name, data)]) for name, data in every}
    lag = cycle_lag(every)
    cycle = CYCLE_S if lag is None else max(0, round(lag))
    rows = [r for name, data in saved for r in compare(name, data, launch_delay, cycle)]
    for r in rows:
        r["delay_s"] = excess.get(r["run"]) if launch_delay is None else launch_delay
    return {
        "launch_excess_s": excess,
        "delay_s": launch_delay,
        "cycle_lag_s": lag,
        "cycle_s": cycle,
        "overlay_max": OVERLAY_MAX,
        "overlay_counts": overlay_counts(every),
        "rows": rows,
    }


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per arm: mean and max |JCT error|, runs within 10 %."""
    out = []
    for arm in ("sbatch", "optsub"):
        errs = [abs(r["jct_err"]) for r in rows if r["arm"] == arm]
        if errs:
            within = sum(e <= 0.10 for e in errs)
            out.append(
                f"{arm}: |mean JCT error| mean {statistics.mean(errs) * 100:.1f} %, max "
                f"{max(errs) * 100:.1f} %; within 10 % in {within} of {len(errs)} runs"
            )
    return out


def update_doc(path: Path) -> None:
    """Replace the section "### The simulator against these runs" of ``path`` (up to the
    next heading) with what ``scripts/evaluate`` renders there."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sim_evaluate_render import sim_vs_real  # the one rendering of this section

    head = "### The simulator against these runs"
    text = path.read_text()
    start = text.index(head)
    body = start + len(head)
    nxt = [i for i in (text.find("\n## ", body), text.find("\n### ", body)) if i >= 0]
    end = min(nxt) + 1 if nxt else len(text)
    section = "\n".join([head, "", *sim_vs_real(), ""]) + ("\n" if nxt else "")
    path.write_text(text[:start] + section + text[end:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--launch-delay", type=float, default=None)
    ap.add_argument(
        "--update-doc",
        action="store_true",
        help="rewrite the section 'The simulator against these runs' of docs/evaluation.md",
    )
    args = ap.parse_args()
    if args.update_doc:
        update_doc(ROOT / "docs" / "evaluation.md")
        print("updated docs/evaluation.md")
        return 0
    res = replay(runs(args.files) if args.files else None, args.launch_delay)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    ex = res["launch_excess_s"].values()
    used = "each run's own" if res["delay_s"] is None else f"{res['delay_s']:.2f} s"
    print(
        f"launch excess (real run time - sleep) per run: {min(ex):.2f}-{max(ex):.2f} s, "
        f"used {used}; measured controller cycle: {res['cycle_lag_s']} s, "
        f"used {res['cycle_s']} s"
    )
    print("\n".join(markdown(res["rows"])))
    print("\n".join(summary(res["rows"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
