#!/usr/bin/env python3
"""Spool ingestion against a hostile spool: wall time and peak memory (docs/security.md).

Usage (as root, no Slurm needed)::

    .venv/bin/python scripts/bench/spool_hostile.py [--flood 100000] [--dir /var/tmp]
        [--json out.json]

Each scenario runs in a fresh child process (so its peak RSS, ``ru_maxrss``,
is its own) over a new spool directory (mode 1777) and a new SQLite database,
with one ordinary file of 100 records by the running user next to the
hostile input; it reports the wall time of one ``ingest_spool`` call, the
child's peak RSS, and whether the ordinary records were stored in that call:

* ``baseline``: only the ordinary file;
* ``flood``: ``--flood`` tiny files (``{}``) owned by another user (uid 65534);
* ``huge``: a 1 GiB sparse file;
* ``line-100M``: a file holding one 100 MB line (over the 64 MiB file cap);
* ``line-60M``: a 60 MB line then a valid record (read in 1 MiB chunks, the
  line dropped);
* ``nested``: a line of 900 000 ``[`` (deeper than the parser can go);
* ``fifo``: a FIFO nobody writes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

OTHER = 65534


def _populate(kind: str, spool: Path, flood: int, me: str) -> None:
    recs = [
        {"key": f"ok-{i}", "at": 1000 + i, "job_id": 10 + i, "user": me, "data": {"allowed": ["a"]}}
        for i in range(100)
    ]
    (spool / f"optsub-{me}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    from slurmopt.trust import user_name

    other = user_name(OTHER)  # named after their owner: read, not refused by name
    if kind == "flood":
        for i in range(flood):
            p = spool / f"optsub-{other}.t{i}.jsonl"
            p.write_text("{}\n")
            os.chown(p, OTHER, -1)
    elif kind == "huge":
        with open(spool / f"optsub-{me}.huge.jsonl", "wb") as fh:
            fh.truncate(1 << 30)
    elif kind in ("line-100M", "line-60M"):
        size = (100 if kind == "line-100M" else 60) * 1000 * 1000
        with open(spool / f"optsub-{me}.line.jsonl", "wb") as fh:
            chunk = b"x" * (1 << 20)
            left = size
            while left > 0:
                fh.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            fh.write(b'\n{"key": "after-line", "user": "' + me.encode() + b'"}\n')
    elif kind == "nested":
        (spool / f"optsub-{me}.deep.jsonl").write_text("[" * 900_000 + "\n")
    elif kind == "fifo":
        os.mkfifo(spool / f"optsub-{me}.fifo.jsonl")
    for f in spool.iterdir():
        if f.is_file() and not f.is_symlink():
            os.utime(f, (1, 1))


def _child(kind: str, base: str, flood: int, q: Any) -> None:
    from slurmopt.history import db
    from slurmopt.history.spool import ingest_spool
    from slurmopt.trust import me

    work = Path(tempfile.mkdtemp(dir=base))
    try:
        spool = work / "spool"
        spool.mkdir()
        os.chmod(spool, 0o1777)
        _populate(kind, spool, flood, me())
        engine = db.make_engine(f"sqlite:///{work / 'h.sqlite'}")
        db.upgrade(engine)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        st = ingest_spool(engine, spool)
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        keys = {r["key"] for r in db.rows(engine, "spool_records")}
        q.put(
            {
                "scenario": kind,
                "wall_s": round(wall, 3),
                "peak_rss_mib": round(rss / 1024, 1),
                "rss_before_mib": round(rss0 / 1024, 1),
                "ordinary_stored": sum(k.startswith("key:ok-") for k in keys),
                "refused_files": st.refused_files,
                "deferred": st.deferred,
                "bad_lines": st.bad_lines,
            }
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flood", type=int, default=100_000)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("spool_hostile: run as root (files are chowned to another uid)", file=sys.stderr)
        return 2
    ctx = get_context("spawn")
    out = []
    for kind in ("baseline", "flood", "huge", "line-100M", "line-60M", "nested", "fifo"):
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(kind, args.dir, args.flood, q))
        p.start()
        res = q.get(timeout=1800)
        p.join()
        out.append(res)
        print(json.dumps(res), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
