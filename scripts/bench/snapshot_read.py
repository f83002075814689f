#!/usr/bin/env python3
"""Time of ``Snapshot.from_dict`` (snapshot files, optsub's state cache) per git revision.

Builds a snapshot of ``--jobs`` jobs from tests/data/optimize/snapshot_synth48.json
(its 204 jobs repeated with fresh ids), then for each ``--rev`` loads
``slurmopt/model.py`` as it is at that revision (``HEAD``: the working tree) and
reports the best of ``--repeat`` reads. Run from the repository root.

Usage: scripts/bench/snapshot_read.py [--jobs 5000] [--repeat 7] [--rev 96bc7ac --rev HEAD]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def model_at(rev: str, tmp: Path) -> ModuleType:
    if rev == "HEAD":
        path = ROOT / "slurmopt" / "model.py"
    else:
        path = tmp / f"model_{rev}.py"
        path.write_text(
            subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:slurmopt/model.py"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    name = f"model_{rev.replace('~', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rev", action="append", default=[])
    args = ap.parse_args()
    revs = args.rev or ["96bc7ac", "HEAD"]
    base = json.loads((ROOT / "tests/data/optimize/snapshot_synth48.json").read_text())
    jobs = base["jobs"]
    data: dict[str, Any] = dict(
        base, jobs=[dict(jobs[i % len(jobs)], job_id=10**6 + i) for i in range(args.jobs)]
    )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rev in revs:
            mod = model_at(rev, Path(tmp))
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                mod.Snapshot.from_dict(data)
                best = min(best, time.perf_counter() - t0)
            out[rev] = round(best * 1000, 1)
            print(f"{rev:10} {args.jobs} jobs: {best * 1000:7.1f} ms (best of {args.repeat})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
