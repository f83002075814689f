"""Markdown for docs/evaluation.md from the results of sim_evaluate.py."""

from __future__ import annotations

from typing import Any

TITLE = {
    "alibaba-gpu-2023.toml": "Alibaba GPU 2023 (7,255 started pods) on its own cluster "
    "(`etc/clusters/alibaba-gpu-2023.toml`: 1,523 nodes, 6,212 GPUs, 8 partitions)",
    "alibaba-gpu-2023-eighth.toml": "Alibaba GPU 2023 (7,255 started pods) on an eighth of "
    "its cluster (`etc/clusters/alibaba-gpu-2023-eighth.toml`: every 8th node per GPU model, "
    "193 nodes, 775 GPUs): the same trace with contention",
    "kth-sp2-hetero.toml": "KTH-SP2 (28,481 jobs after default cleaning; 1 processor = 1 GPU) "
    "on `etc/clusters/kth-sp2-hetero.toml` (25x4 K80 + 8x4 P100 + 8x4 V100, partitions "
    "listed K80 first)",
    "kth-sp2-hetero-fastfirst.toml": "KTH-SP2 (28,481 jobs after default cleaning; "
    "1 processor = 1 GPU) on `etc/clusters/kth-sp2-hetero-fastfirst.toml` (the same cluster, "
    "partitions listed V100 first)",
}

BASELINE_POLICIES = ("slurm-multi", "slurm-multi-fast")
"""Slurm's own rule in the spec's partition order, and with the fastest GPU listed first."""


def _jct(r: dict[str, Any]) -> float:
    return float(r["result"]["metrics"]["jct"]["mean"])


def strongest(results: list[dict[str, Any]]) -> list[str]:
    """Per (spec, load): each optimizer policy's mean JCT gain against each baseline order."""
    out = [
        "Strongest honest baseline: Slurm's multi-partition rule (PriorityTier, then the order "
        "listed) as `slurm-multi` (partitions in the spec's order) and `slurm-multi-fast` (the "
        "same rule, partitions listed fastest GPU first, what a well-configured site sets); "
        "the strongest is the one with the lower mean JCT. Gain = 1 - JCT(policy) / "
        "JCT(baseline).",
        "",
        "| case | strongest baseline | its mean JCT (h) | policy | mean JCT (h) | gain vs "
        "strongest | gain vs `slurm-multi` | gain vs `slurm-multi-fast` |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["spec"], r["load"]), []).append(r)
    for (spec, load), runs in sorted(groups.items()):
        base = {r["policy"]: r for r in runs if r["policy"] in BASELINE_POLICIES}
        if not base:
            continue
        best = min(base.values(), key=_jct)
        for r in runs:
            if r["policy"] not in ("optsub", "auto", "ga", "sa"):
                continue
            gains = [
                f"{(1 - _jct(r) / _jct(base[b])) * 100:+.1f} %" if b in base else "n/a"
                for b in BASELINE_POLICIES
            ]
            out.append(
                f"| {spec.removesuffix('.toml')}, load x{load:g} | `{best['policy']}` | "
                f"{_h(_jct(best), 3)} | {r['policy']} | {_h(_jct(r), 3)} | "
                f"{(1 - _jct(r) / _jct(best)) * 100:+.1f} % | {gains[0]} | {gains[1]} |"
            )
    return out


def sim_vs_real() -> list[str]:
    """The simulator against every saved real-Slurm run (scripts/bench/sim_vs_real.py)."""
    import sim_vs_real as svr

    if not svr.runs():
        return ["No saved run (`docs/e2e/` is empty)."]
    res = svr.replay()
    rows = res["rows"]
    cycle, lag = res["cycle_s"], res["cycle_lag_s"]
    lag_text = "no run records it" if lag is None else f"measured {lag:.2f} s"
    counts = res["overlay_counts"]
    plateau = f"{min(counts)}-{max(counts)}" if counts else "(none recorded)"
    cw = [r for r in rows if r["arm"] == "sbatch" and r["run"].startswith("contended")]
    waits = (
        f"{min(r['sim_wait'] for r in cw):.1f}-{max(r['sim_wait'] for r in cw):.1f} s vs "
        f"{min(r['real_wait'] for r in cw):.1f}-{max(r['real_wait'] for r in cw):.1f} s"
        if cw
        else "n/a"
    )
    per_run = {name: svr.launch_excess([(name, data)]) for name, data in svr.runs()}
    hi = max(per_run, key=per_run.__getitem__)
    decs = [r["decisions"] for r in rows if r["arm"] == "optsub" and r.get("decisions")]
    agree = (
        f"{min(a for a, _ in decs)} to {max(a for a, _ in decs)} of {max(n for _, n in decs)}"
        if decs
        else "(no run records them)"
    )
    return [
        "Each saved `scripts/e2e-compare` run replayed in the simulator with the same job set "
        "(`scripts/sim-vs-real`; `scripts/bench/sim_vs_real.py` says how; "
        "`scripts/sim-vs-real --update-doc` rewrites this section): same submit times, "
        "reference durations, GPU speeds, time limits and controller interval, on "
        "`etc/testbed/default.toml` restricted to the four partitions the jobs list; the "
        "`sbatch` arm as `slurm-multi`, the `optsub` arm as `auto`: optsub's own ranking "
        "(`slurmopt.optimize.ranking.rank_new_job`) at submission, the controller's re-plan "
        "at each tick, with slurmopt modelled as the run ran it (below). 'same partition': "
        "the share of jobs that ran on the same partition in the replay and on Slurm; 'first "
        "choice as optsub's': where the run records optsub's decisions, the jobs whose first "
        "choice in the replay is the partition optsub chose.",
        "",
        *svr.markdown(rows),
        "",
        *(f"* {line}." for line in svr.summary(rows)),
        "",
        "What is modelled (each parameter measured on the saved runs, the same for every "
        "run; `slurmopt/sim/optpolicy.py`, `engine.py`):",
        "",
        "* *The optimizer's GPU speeds*: the e2e configuration sets no `[optimize] gpu_speed`, "
        "so optsub and the controller ranked with the defaults (t4 0.5) while the jobs slept "
        "at the run's speeds (t4 0.4): the decisions recorded in the production runs rank a "
        "4-minute job at 40 / 60 / 120 / 240 s on h100 / a100 / v100 / t4.",
        "* *Predictions learned online* (`learned`): the controller's Envelope predictor over "
        "the jobs finished by each cycle, the time limit for a job like none that finished "
        "(`ControllerPredictions`, what `Store.tune` does); optsub ranks with the last "
        "cycle's predictions, and a job that cycle did not see is expected to run to its "
        "limit. In the contended runs every submission comes before any job ends, so the "
        "whole burst is ranked on time limits (all 60 recorded decisions of each production "
        "run show it). The earlier replay gave the optimizer the exact runtimes: that made "
        "the simulated optsub an oracle (contended-predictions-seed1 -10.3 %).",
        "* *History before the run, limit shares* (`history`, `limit_ratio`: code since "
        "39980b5): the optsub arm's controller starts with the jobs of the sbatch arm it "
        "found finished in Slurm, and learns from them (the Envelope predictor, and the "
        "share of its limit a running job without a prediction is expected to use: 90th "
        "percentile of runtime / limit once 20 jobs are known). Where a run's decisions "
        "record the shares optsub read from the first decision on ('limit shares * 0.1472' "
        "in `superseded/uncontended-interval60-seed1-f5434a3-leaked.json`), the replay's "
        "history is the sbatch arm's last "
        "20 jobs by end: their 90th percentile is that share (the count is not recorded; "
        "the last 20 to 30 give 0.1472). With it, that run's first choices go from 41 to 57 "
        "of 60 as optsub's (same partition 68 % to 95 %): optsub expected the H100 jobs "
        "started since the last cycle to end at 0.15 x their limit and queued for them. So "
        "a 'cold' run was not quite cold: its first cycle recorded the sbatch arm's jobs that "
        "Slurm still showed (e2e-compare waits for Slurm to forget them since 59e45f8; runs "
        "made since record no shares from their first decision and replay without that "
        "history). A warm run (`--warm-seed`): the history is the warm-up's jobs, "
        "drawn again with e2e-compare's own `workload` and replayed as the sbatch arm is "
        "(the JSON keeps only the warm-up's figures); on the three warm contended runs the "
        "replayed warm-up gives the shares they recorded (site-wide 0.55 / 0.48 / 0.58 "
        "against 0.56 / 0.48 / 0.57, h100 0.106 / 0.111 / 0.111 against 0.110 / 0.111 / "
        "0.108). Their first choices differ from optsub's mostly on near-ties: the replay "
        "predicts the same starts to within a second or two (e.g. h100 15 s vs 16-17 s), and "
        "a second flips a tie between an H100 that frees soon and an idle A100.",
        "* *Controller timing*: the first cycle with the first submission (cron starts with "
        "the run; the earlier script ran one right after job 0), then every interval (earlier "
        "runs: interval plus the cycle, as the script slept after each cycle). Production "
        f"runs: optsub sees a cycle's cache {cycle} s after the cycle starts ({lag_text}: the "
        "midpoint between the last decision without and the first with the first cycle's "
        "predictions, median over the runs); earlier runs: the submissions due during a cycle "
        "inside the submission loop went out when it ended. The earlier runs' own cycle time "
        "was not recorded and varied: their real choices flip back to the H100s every 11 "
        "submissions in uncontended seeds 1 and 2 (a cycle under 1 s on the 1 s grid) and "
        f"every 12-13 in seed 3; the replay uses the measured {cycle} s for all (with 1 s, "
        "measured at f609f73: uncontended-seed2 +1.0 % and 97 % same partition, seed 1 "
        f"-1.0 % and 100 %, but seed 3 -3.6 % and 60 %; with {cycle} s: "
        f"{_row(rows, 'uncontended-seed2')}, {_row(rows, 'uncontended-seed1')}, "
        f"{_row(rows, 'uncontended-seed3')}).",
        "* *Earlier runs: optsub's view* (`stale_cache`, `overlay_max`): the last cycle's "
        "snapshot plus its own newest submissions since. optsub reads only the last 64 KiB "
        "of its spool file (`optsub/state.py`, `TAIL_BYTES`), about "
        f"{res['overlay_max']} decision records. Measured twice: in the three contended runs "
        "without predictions the first job that queued for a full H100 partition is the 33rd "
        "(job 32; the tail then held at most 30 of the 32 earlier records, and an H100 job "
        "had dropped out of optsub's view), and the production runs' recorded state sources "
        f"stop counting at {plateau} ('+N newer optsub submission(s)'; the records' size "
        "varies with the code and the state source). (A record rebuilt with "
        "those runs' code, commit 0cec008, on a four-partition snapshot is 2,003 bytes: 32; "
        "29 to 32 give the same table within 1.5 points.) So in the contended runs, from the "
        "33rd submission on, the oldest (H100) jobs dropped out of optsub's view, the H100s "
        "looked free and the second half of the burst queued for them while T4s and V100s "
        "were free (contended-seed2: jobs 32-46 waited 7-28 s for H100s, no job on a T4). "
        "Without the cap (the rest of the model as here, measured at f609f73) the replay "
        "sends 8 jobs to the T4s in seeds 2 and 3: +20.5 % and +21.0 % mean JCT (+19.0 % and "
        "+26.4 % for the runs with predictions; the table before this model: +20.8 % and "
        "+25.3 %, the runs with predictions within 10 % only because the optimizer had the "
        "exact runtimes). The production runs' live refresh adds the jobs the overlay misses "
        "from squeue (column 'sim live state': the earlier runs on the live state).",
        "* *Launch delay*: every job holds its GPUs beyond its sleep the run's own launch "
        "excess: the mean of Slurm's recorded run time (whole seconds) minus the sleep over "
        f"the run's jobs, both arms ({min(per_run.values()):.2f} to {per_run[hi]:.2f} s, the "
        f"most in `{hi}`; it grows with the host's load: the runs made two at a time on the "
        "2-core host at load 3-7 have the largest); whole seconds in the simulator, the rest "
        "added to its end. Added to the JCT only (as before), the next job on those GPUs "
        "started too early: the 9 contended sbatch runs saved by then were -1.5 to -4.6 % "
        "(holding the GPUs, with the mean over all runs, -0.9 to -3.9 %); with one mean for "
        "all runs the loaded runs came out faster than Slurm was in both arms (sbatch of "
        "uncontended-interval60-seed2 at 59e45f8 -2.7 %, its own excess 1.65 s: +0.8 %).",
        "",
        "What still differs: the simulated waits of the contended runs are shorter than the "
        f"real ones (sbatch {waits}): Slurm starts a waiting job a little after "
        "the job it waits for ends (measured: gap between such a start and the last end on "
        "its node, median 0.2 s, mean 0.36 s under sbatch, 0.63 s under optsub), and Slurm's "
        "timestamps are whole seconds. Per decision, the replay's first "
        f"choices are optsub's on {agree} jobs of the runs that record them (the simulator's "
        "clock rounds the burst's submissions, 6 per second, to whole seconds, and the first "
        "cycle caches the "
        "4 jobs of the first simulated second where the real one cached 1-2). The "
        "production runs made at commit 87dd776 (before f5fbd71) placed optsub's new job "
        "ahead of the pending jobs submitted in the same second (the tie f5fbd71 fixed): "
        "`superseded/contended-interval60-seed2-87dd776.json` sent jobs 27-29 to A100s "
        "those submissions had just filled, and replays at -7.8 % (75 % same partition) with "
        "today's rule, -1.1 % (83 %) with the old tie emulated; the re-run after the fix "
        "replays within a few percent with today's rule, and the seed 1 run made after the "
        "fix (`superseded/contended-interval60-seed1-f5434a3-leaked.json`) goes from +1.9 % "
        "(93 %) to +14.0 % (87 %) with the old tie, so the tie is not part of the model: it "
        "names the cause of that old run's miss.",
    ]


def _row(rows: list[dict[str, Any]], run: str) -> str:
    """``run``'s optsub row as 'error and same-partition share' (n/a: not replayed)."""
    r = next((r for r in rows if r["run"] == run and r["arm"] == "optsub"), None)
    if r is None:
        return f"{run} n/a"
    return f"{r['jct_err'] * 100:+.1f} % and {r['same_partition'] * 100:.0f} %"


def _h(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x / 3600:,.{nd}f}"


def _f(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


def _table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| policy | mean wait (h) | p95 wait (h) | mean JCT (h) | mean bsld | makespan (h) "
        "| GPU util | JCT / lower bound | moves | replay wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        m = r["result"]["metrics"]
        st = r["result"]["stats"]
        name = r["policy"] + (f" + controller {r['interval']} s" if r["interval"] else "")
        lines.append(
            f"| {name} | {_h(m['wait']['mean'], 3)} | {_h(m['wait']['p95'])} | "
            f"{_h(m['jct']['mean'], 3)} | {_f(m['bounded_slowdown']['mean'])} | "
            f"{_h(m['makespan'], 1)} | {_f(m['gpu_utilization'], 4)} | "
            f"{_f(m['ratio_to_lower_bound'], 3)} | {st['moves']} | {r['wall_s']:.1f} |"
        )
    return lines


def _find(results: list[dict[str, Any]], spec: str, load: float, policy: str) -> dict[str, Any]:
    for r in results:
        if r["spec"] == spec and r["load"] == load and r["policy"] == policy:
            return r
    raise KeyError((spec, load, policy))


def _alibaba_targets(results: list[dict[str, Any]], spec: str, load: float) -> list[str]:
    """The Alibaba targets for ``auto`` there, else for ``optsub`` (named in the rows)."""
    try:
        sm = _find(results, spec, load, "slurm-multi")
        asub = _find(results, spec, load, "as-submitted")
    except KeyError:
        return []
    for pol in ("auto", "optsub"):
        try:
            auto = _find(results, spec, load, pol)
            break
        except KeyError:
            continue
    else:
        return []
    where = f"{spec.removesuffix('.toml')}, load x{load:g}"
    ja = auto["result"]["metrics"]["jct"]["mean"]
    js = sm["result"]["metrics"]["jct"]["mean"]
    jq = asub["result"]["metrics"]["jct"]["mean"]
    red_s = 1 - ja / js
    red_q = 1 - ja / jq

    def bound(r: dict[str, Any]) -> str:
        lb = r["result"]["metrics"]["ratio_to_lower_bound"]
        if not lb:
            return ""
        return (
            f"; no policy can do better than {(1 - 1 / lb) * 100:.1f} % "
            f"({r['policy']} is {lb:.3f}x the lower bound)"
        )

    name = f"`{pol}`" + (" (auto was not run here)" if pol != "auto" else "")
    out = [
        f"| {where}: {name} mean JCT >= 20 % below `slurm-multi` | {red_s * 100:.1f} % below "
        f"({_h(ja, 3)} h vs {_h(js, 3)} h){bound(sm)} | {'yes' if red_s >= 0.20 else 'no'} |",
        f"| {where}: {name} mean JCT >= 35 % below `as-submitted` | {red_q * 100:.1f} % below "
        f"({_h(ja, 3)} h vs {_h(jq, 3)} h){bound(asub)} | {'yes' if red_q >= 0.35 else 'no'} |",
    ]
    worst = None
    for cls, p95 in auto["class_p95_jct"].items():
        base = sm["class_p95_jct"].get(cls)
        if base and auto["class_jobs"].get(cls, 0) >= 20 and base > 0:
            ratio = p95 / base
            if worst is None or ratio > worst[0]:
                worst = (ratio, cls)
    if worst is not None:
        out.append(
            f"| {where}: no job class's p95 JCT > 10 % worse than `slurm-multi` (classes of "
            f">= 20 jobs) | worst class `{worst[1] or '(CPU jobs)'}`: "
            f"{(worst[0] - 1) * 100:+.1f} % | {'yes' if worst[0] <= 1.10 else 'no'} |"
        )
    return out


def _targets(results: list[dict[str, Any]]) -> list[str]:
    out = ["| target | measured | met |", "|---|---|---|"]
    out += _alibaba_targets(results, "alibaba-gpu-2023.toml", 1.0)
    out += _alibaba_targets(results, "alibaba-gpu-2023-eighth.toml", 100.0)
    out += _alibaba_targets(results, "alibaba-gpu-2023-eighth.toml", 1000.0)
    for spec in ("alibaba-gpu-2023.toml", "kth-sp2-hetero.toml"):
        try:
            r = _find(results, spec, 1.0, "auto")
        except KeyError:
            continue
        ratio = r["result"]["metrics"]["ratio_to_lower_bound"]
        out.append(
            f"| {spec.removesuffix('.toml')}, load x1: `auto` mean JCT within 1.3x of the "
            f"lower bound | {_f(ratio, 3)}x | "
            f"{'yes' if ratio is not None and ratio <= 1.3 else 'no'} |"
        )
    if len(out) == 2:
        return ["(optimizer policies were not run: `--skip-opt`)"]
    return out


def _speed(speed: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[str]:
    out = [
        "| replay | policy | jobs | replay wall (s) | jobs/s (replay loop) | "
        "simulated time / wall |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in speed:
        st = r["result"]["stats"]
        out.append(
            f"| {r['trace']} on {r['spec']} | {r['policy']} | {r['result']['jobs']:,} | "
            f"{st['wall_s']:.2f} | {st['jobs_per_s']:,.0f} | "
            f"{r['simulated_s'] / max(r['wall_s'], 1e-9):,.0f}x |"
        )
    for r in results:
        if r["policy"] == "auto" and r["load"] == 1.0:
            st = r["result"]["stats"]
            out.append(
                f"| {r['trace']} on {r['spec']} (run beside another replay) | auto, optsub at "
                f"submit + controller every {r['interval']} s | {r['result']['jobs']:,} | "
                f"{r['wall_s']:.1f} | {st['jobs_per_s']:,.0f} | "
                f"{r['simulated_s'] / max(r['wall_s'], 1e-9):,.0f}x |"
            )
    return out


def render_doc(
    conf: list[str],
    fid: list[str],
    results: list[dict[str, Any]],
    speed: list[dict[str, Any]],
    meta: dict[str, Any],
    e2e: list[dict[str, Any]],
) -> str:
    lines = [
        "# slurmopt: the measured case",
        "",
        f"Generated by `scripts/evaluate` ({meta['argv'] or 'no options'}) on {meta['date']}, "
        f"commit `{meta['commit']}`, Python {meta['python']}, {meta['cpus']} CPUs "
        f"({meta['jobs']} replays in parallel), in {meta['total_s']:.0f} s."
        + (" **Quick mode: first 1,500 jobs of each trace only.**" if meta["quick"] else ""),
        "Every number below comes from that run; the raw results are in "
        "`build/evaluation.json`. Definitions: `docs/simulator.md`.",
        "",
        "## Conformance of the metric code",
        "",
        "Metrics computed from the recorded waits and runtimes of KTH-SP2 "
        "(`../shared/traces/kth_sp2_swf/KTH-SP2-1996-2.1-cln.swf`), against the published "
        "figures (mean wait 4.275 h, mean bounded slowdown 193.8, tau = 10 s):",
        "",
        *conf,
        "",
        "## Fidelity: KTH-SP2 replayed on its own machine",
        "",
        *fid,
        "",
        "Why the replay differs from the record:",
        "",
        "* the real machine's scheduler was EASY with its own priorities, limits and operator "
        "actions (held jobs, reservations, downtime, dedicated time); the log does not record "
        "them, the simulator knows only FIFO + EASY;",
        "* the simulator has no node failures or maintenance, so capacity is always 100 nodes;",
        "* the simulator starts jobs the instant resources free up (no scheduling cycle period, "
        "no launch overhead), and its nodes are interchangeable (the SP2's switch topology and "
        "node types are not modeled);",
        "* jobs that ran past their requested time keep their recorded runtime, while the real "
        "scheduler planned with the request;",
        "* user behaviour is fixed: in reality users react to queue lengths (the feedback the "
        "SWF 'preceding job' fields would encode, unknown here).",
        "",
        "## Policies x traces",
        "",
        "`load x N` divides every inter-arrival time by N (`slurmopt.sim.workload.scale_load`). "
        "Optimizer policies: `optsub` ranks each new job with the live `Problem` "
        "(earliest predicted end); `auto`, `ga` and `sa` do the same at submission and "
        "re-place pending jobs with `make_plan(problem, policy)` every controller interval "
        "(1,000 evaluations per plan). "
        "JCT / lower bound: mean JCT over the mean zero-wait JCT (each job alone on its "
        "fastest eligible partition).",
        "",
    ]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["spec"], r["load"]), []).append(r)
    order = [
        "as-submitted",
        "slurm-multi",
        "slurm-multi-fast",
        "round-robin",
        "least-loaded",
        "hash",
        "est-completion",
        "optsub",
        "auto",
        "ga",
        "sa",
    ]
    for (spec, load), runs in sorted(groups.items()):
        runs.sort(key=lambda r: order.index(r["policy"]) if r["policy"] in order else 99)
        lines += [f"### {TITLE.get(spec, spec)}, load x{load:g}", "", *_table(runs), ""]
    lines += [
        "On the eighth of the Alibaba cluster at load x1000 the optimizer ran as `optsub` "
        "only (ranking at submission): every start or end means list-scheduling the long "
        "queue again at the next submission (its replay wall time is in the table; "
        "`docs/benchmarks.md`, issue 16), and `auto`'s re-plans would add more.",
        "",
        "## Gains against the strongest baseline (issue 16)",
        "",
        *strongest(results),
        "",
        "Reading: on KTH-SP2 with the K80s listed first, Slurm's rule starts jobs on the "
        "first partition with room, the K80s, so most of the gain against `slurm-multi` (40 "
        "to 62 % at loads x2 and x1) is the partition order; against the same rule with the "
        "fastest GPUs listed first (a well-configured site) the gain is the rows' 'gain vs "
        "strongest' column (waiting for a faster GPU, placing by predicted completion). With "
        "the spec listing V100 first, `slurm-multi` is that strongest baseline. On the "
        "Alibaba traces both orders give nearly the same baseline: most pods start at once "
        "wherever they are placed, and the gain left is bounded by the JCT / lower-bound "
        "ratio of the baseline in the tables above.",
        "",
        "## Targets of issue 8",
        "",
        *_targets(results),
        "",
        "## Speed",
        "",
        "Serial replays (nothing else of the evaluation running; the machine is shared with "
        "other work):",
        "",
        *_speed(speed, results),
        "",
        "Target: pure replay >= 50,000 jobs/s with a greedy policy; the whole Alibaba replay "
        "with `auto` every 60 simulated seconds in <= 10 minutes on 2 cores.",
        "",
        *_e2e(e2e),
        "",
        "### The simulator against these runs",
        "",
        *sim_vs_real(),
        "",
    ]
    return "\n".join(lines)


def _e2e(runs: list[dict[str, Any]]) -> list[str]:
    """The real-Slurm section, from the JSON files ``scripts/e2e-compare --out`` wrote."""
    lines = [
        "## On real Slurm: `sbatch -p` vs optsub + controller (`scripts/e2e-compare`)",
        "",
        "Not replayed by this script (each run takes minutes of real time): these are the "
        "results `scripts/e2e-compare --out docs/e2e/NAME.json` saved, read back here. "
        "Each run brings up its own testbed (`var/testbed-e2e`, `etc/testbed/default.toml`: "
        "h100 2x8, a100 3x4, v100 2x4, t4 2x4 GPUs) and submits the same jobs twice: "
        "`sbatch -p h100,a100,v100,t4` (Slurm's rule: start wherever it can start first), then "
        "`optsub -p h100,a100,v100,t4` with `slurmopt controller --once` in enforce mode "
        "every 10 s, or every 60 s (`--interval 60`, production cadence: cron every "
        "minute; issue 16) (with predictions: `[history] use_predictions`, so the "
        "controller predicts runtimes from the jobs it saw finish and optsub ranks with "
        "them; off by default before issue 16, on by default since). "
        "Jobs are drawn (seeded) from the Alibaba 2023 pods with 1-8 GPUs; each "
        "sleeps its scaled trace duration divided by the speed of the GPU type of the node "
        "it runs on (its own `SLURMD_NODENAME`). JCT = end - submit, wait = start - submit, "
        "from Slurm's own timestamps.",
        "",
    ]
    if not runs:
        return [*lines, "No saved run (`docs/e2e/` is empty).", ""]
    lines += [
        "| run | jobs | scale | spread (s) | longest pod (s) | controller every (s) "
        "| mean JCT sbatch (s) | mean JCT optsub (s) | change | mean wait sbatch / optsub (s) "
        "| makespan sbatch / optsub (s) | finished |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    changes: dict[str, list[float]] = {}
    for r in runs:
        a, b, args = r["results"]["sbatch"], r["results"]["optsub"], r["args"]
        change = 100.0 * (b["mean_jct_s"] - a["mean_jct_s"]) / a["mean_jct_s"]
        pred = args.get("predictions", False)
        interval = float(args.get("interval", 10.0))
        warm = args.get("warm_seed")
        kind = (
            f"scale {args['scale']:g}, spread {args['spread']:g} s, controller every "
            f"{interval:g} s"
            + (", predictions on" if pred else "")
            + (", warm history" if warm is not None else "")
        )
        changes.setdefault(kind, []).append(change)
        default = " (default configuration)" if args.get("predictions_default") else ""
        if warm is not None:
            default += f", warm history: warm-up seed {warm}"
        lines.append(
            f"| `{r['name']}` (seed {args['seed']}{', predictions' if pred else ''}{default}) | "
            f"{a['jobs']} | {args['scale']:g} | "
            f"{args['spread']:g} | {args['longest']} | {interval:g} | {a['mean_jct_s']:.1f} | "
            f"{b['mean_jct_s']:.1f} | {change:+.1f} % | "
            f"{a['mean_wait_s']:.1f} / {b['mean_wait_s']:.1f} | "
            f"{a['makespan_s']:.0f} / {b['makespan_s']:.0f} | {r.get('finished_at', '?')} |"
        )
    lines += ["", "Jobs per partition:", ""]
    for r in runs:
        a, b = r["results"]["sbatch"], r["results"]["optsub"]
        fmt = ", ".join
        lines.append(
            f"* `{r['name']}`: sbatch {fmt(f'{k} {v}' for k, v in sorted(a['partitions'].items()))}"
            f"; optsub {fmt(f'{k} {v}' for k, v in sorted(b['partitions'].items()))}"
        )
    lines += [
        "",
        "Targets. Issue 8 (controller every 10 s): optsub at least 15 % lower mean JCT. "
        "Issue 16 (controller every 60 s, default configuration): uncontended (scale 0.02) "
        "at most +2 % on every seed; contended (scale 0.04) at most -25 % on every seed.",
        "",
    ]
    for kind, ch in changes.items():
        if "every 60 s" in kind:
            bound = 2.0 if "scale 0.02" in kind else -25.0
            met = sum(c <= bound for c in ch)
            target = f"issue 16 target (<= {bound:+g} %) met in {met} of {len(ch)}"
            if "warm history" in kind:  # the target is about the cold default runs
                target = f"(not the target's configuration) <= {bound:+g} % in {met} of {len(ch)}"
        else:
            met = sum(c <= -15.0 for c in ch)
            target = f"issue 8 target met in {met} of {len(ch)}"
        lines.append(
            f"* {kind}: mean change {sum(ch) / len(ch):+.1f} % over {len(ch)} run(s) "
            f"(from {min(ch):+.1f} to {max(ch):+.1f} %); {target}."
        )
    lines += [
        "",
        "Reading: with contention (jobs arriving faster than the GPUs free up), Slurm's "
        "rule starts jobs on the first free GPU, T4s included, and the slowest of them set "
        "the makespan; optsub waits a few seconds longer for faster GPUs. Without contention "
        "Slurm's rule is already right (the fastest listed partition has a free GPU), so "
        "optsub can at best match it; it loses when its picture is stale: the e2e jobs' time "
        "limits are 6 to 30 times their runtimes (median 12), so from the state cache the "
        "H100s look busy long after their jobs ended. With `--predictions` the controller's "
        "predicted runtimes (learned from the jobs it saw finish) replace the limits.",
        "",
        "Issue 16, controller every 60 s (`*-interval60-*`, default configuration): optsub "
        "corrects the state cache with one live `squeue` (jobs that ended or started since, "
        "and jobs submitted since that neither the cache nor the spool shows), and a job "
        "that must wait also lists the partitions where it runs at least as fast. Each run's "
        "JSON records optsub's decision per job (`decision`: the state source and every "
        "candidate's predicted start and end). Uncontended, the stale picture is gone: optsub "
        "sends a job to an A100 only when the H100s are full at that moment, as Slurm's rule "
        "does; the two arms still differ by a few seconds of placement timing, which moves "
        "the mean JCT by a few percent either way from run to run (seed 1 with the live "
        "refresh at commits 81cdd26, b8c95a0 and 87dd776: -2.4 %, +5.1 %, -3.6 %; the "
        "first two are in `docs/e2e/superseded/`). Contended, the 60 jobs of a 10 s burst "
        "are decided before any of them has finished, so the history has nothing to predict "
        "from yet (the controller learns from finished jobs at its cycles): running jobs "
        "are expected to hold their GPUs until their limits (6 to 30 times their runtimes), "
        "and optsub sends a few jobs to idle T4s (completion 3 to 6 minutes) rather than "
        "wait for H100s and A100s it expects busy for about 3 minutes, which free within "
        "about 10 s; once they run, the controller cannot move them. (These are the runs at "
        "`87dd776`, now in `docs/e2e/superseded/`.)",
        "",
        "Issue 16, decisions a user never regrets (the current `*-interval60-*` runs; "
        "`docs/e2e/README.md` gives each run's commit). Three changes. (1) In the earlier "
        "contended runs, jobs sent to V100s that looked free waited 31 to 55 s (seed 2: 5 "
        "jobs). Not concurrency, as first read (`e2e-compare` submits one job at a time, "
        "each after the previous optsub wrote its record): the decision ranked the new job "
        "ahead of the submissions of the same second (a tie on the submit second, won by "
        "its id -1), so a partition they had just filled looked free; a new job now queues "
        "behind them (`optimize.problem._priority_key`). In the current contended runs no "
        "job sent to a V100 waits more than 1 s. (2) A running job without a prediction is "
        "expected to use the share of its limit that its partition's finished jobs used "
        "(the controller learns it: `[optimize] limit_ratio`, `docs/optsub.md`). In a cold "
        "run it plays no part before 20 jobs have finished and a cycle has run: no decision "
        "of the cold runs above had one. (3) optsub's submit lock, for optsub runs deciding "
        "at the same moment; `e2e-compare` submits one at a time and does not exercise it "
        "(`tests/slurm/test_optsub_burst.py` does: 6 concurrent 4-GPU jobs on the idle "
        "testbed fill the 4 H100 slots and then the 2 V100 slots, where without the lock all "
        "6 go to the H100s). Also, `e2e-compare` now starts the optsub arm once slurmctld "
        "has forgotten the sbatch arm's jobs: its controller's first look at the queue "
        "recorded them, so that every earlier run's 'cold' optsub arm could learn from the "
        "very jobs it was compared with: an uncontended seed 1 run ranked every decision with "
        "a limit share learned from them "
        "(`superseded/uncontended-interval60-seed1-f5434a3-leaked.json`, -2.9 %). In the "
        "contended runs of this round made before the fix (`*-leaked.json`: -24.4, -19.2 "
        "and -21.3 %) fewer than 20 such jobs were seen (no share); their decisions list 2 "
        "to 4 predicted runtimes, as the clean runs' do (the predictor's fallback to the "
        "limit for a job with no history), so the JSON does not tell whether any was learned "
        "from the sbatch arm; the clean re-runs (`59e45f8`) came out 1 to 6 points "
        "worse. All current runs were made after it.",
        "",
        "Reading, cold (the target's configuration). Contended: -19.7, -18.4 and -15.6 % "
        "(were -19.3, -14.1 and -13.1 %): the -25 % target missed on every seed. What "
        "remains is cause (1) of the "
        "earlier runs (the V100 queueing is gone: no V100 job waits more than 1 s): 5 to 8 "
        "jobs per run go to idle T4s (completion 60 to 140 s, against "
        "25 to 35 s on the H100s after a wait of about 10 s), decided in the first 10 s when "
        "nothing has finished: the H100s' and A100s' jobs are expected to run to their "
        "limits, and no honest estimate of their ends exists yet (the learned share needs "
        "finished jobs; a prior share would be a guess, which a site may configure in "
        "`[optimize] limit_ratio` but which these runs do not). Uncontended: -0.6, +5.9 and "
        "+1.6 % (were -3.6, +0.9 and -1.5 %): the +2 % target met on seeds 1 and 3, missed "
        "on seed 2. None of the three had a learned share, so neither change (2) nor (3) "
        "acted there; in seed 2 optsub started three long jobs on H100s that were free in "
        "its arm (in the sbatch arm the H100s were full at those moments and Slurm's rule "
        "put them on A100s), and later sent short jobs to A100s (18 against 14) and 2 to "
        "V100s while the H100s, expected busy for another 111 to 118 s (their jobs' limits), "
        "freed sooner; the 8-GPU job then waited 53 s instead of 25 s. That is the same "
        "cold-start blindness, and the run-to-run spread "
        "of this scenario is of that size (seed 1 at five commits: +5.1, -2.4, +5.1, -3.6, "
        "-0.6 %).",
        "",
        "Reading, warm history (`*-interval60-warm-*`, `--warm-seed 100+seed`: not the "
        "target's configuration; what a site with history gets). The optsub arm's history "
        "starts with a warm-up workload's 60 jobs from accounting (the same scenario drawn "
        "with another seed, run with plain sbatch before both arms). From them the "
        "controller learns that H100 jobs used at most 11 % of their limits (90th "
        "percentile; 0.108 to 0.111 over the three warm-ups) and jobs anywhere 48 to 57 % "
        "(the A100, V100 and T4 partitions had fewer than 20 jobs each, so the site-wide "
        "share applies to them). Contended: -27.3, -29.3 and -28.7 %: the -25 % target's "
        "figure reached on every seed; optsub sent no job to a T4 (the sbatch arms 8 each) "
        "and 37 to 44 to the H100s (sbatch 25 to 28). Uncontended with a warm history "
        "(seeds 1 and 2 only, code `afb1cf3`, no time for seed 3): +3.4 %, +1.6 % "
        "(learned shares: h100 0.115 and 0.115, site-wide 0.133 and 0.115; optsub sent "
        "47 to 50 jobs to the H100s, sbatch 37 to 43); the cold runs of the same seeds: "
        "-0.6 and +5.9 %; seed 1 misses the +2 % bound, seed 2 meets it. "
        "Two runs: whether the share costs anything uncontended is measured no more "
        "closely than that, and the run-to-run spread of this scenario is a few points.",
        "",
    ]
    return lines
