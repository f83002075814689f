"""The trust boundary on the real testbed, attacked by real unprivileged users (docs/security.md).

Two ordinary accounts, ``soalice`` and ``somallory``, are created by the
``users`` fixture (``useradd``; registered with accounting when the testbed
has it). They submit through the testbed's own slurmctld and munge socket and
write to a shared spool of mode 1777 as the README's install notes create it;
their commands run under ``runuser``. With accounting on the testbed they get
an association through ``register_user`` (``scripts/testbed add-user``). Root
runs ingestion and the controller in enforce mode. Each test asserts the
outcome: no foreign job moved or widened, no root-only content read, other
users' decisions unchanged, and every refusal counted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.cycle import CycleReport, run_cycle
from slurmopt.history import db
from slurmopt.history.controller_store import Store
from slurmopt.history.orm import Decision, SpoolRecord, TrustRefusal
from slurmopt.history.spool import ingest_spool
from slurmopt.model import Job
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker, register_user, slurm_cmd, unavailable, wait_for

pytestmark = pytest.mark.slurm

ALICE, MALLORY = "soalice", "somallory"
CFG = ControllerConfig(
    mode="enforce", budget_s=0.5, min_gain_s=20, min_gain_ratio=0.05, imminent_s=5
)
OPT = OptimizeConfig(move_penalty_s=5)
ONE_GPU = ("--gpus-per-node=1", "-t", "1", "--mem=1000", "--chdir=/tmp", "-o", "/dev/null")
PY = sys.executable
MARKER = "ROOT-ONLY-" + uuid.uuid4().hex


# ---------------------------------------------------------------------------
# users, running as them, the shared spool


@pytest.fixture(scope="module")
def users(slurm_env: dict[str, str]) -> dict[str, int]:
    """Two real unprivileged users (created if missing, kept for later runs)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("runuser") is None:
        unavailable("the adversarial tests need root, useradd and runuser")
    import pwd

    out = {}
    for name in (ALICE, MALLORY):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True, timeout=60
            )
        register_user(name)  # an association where the testbed runs accounting
        out[name] = pwd.getpwnam(name).pw_uid
    return out


def as_user(
    user: str, argv: list[str], *, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``user`` with the testbed's Slurm configuration."""
    keep = {k: v for k, v in os.environ.items() if k.startswith("SLURM")}
    full = {"PATH": os.environ["PATH"], "HOME": "/tmp", **keep, **(env or {})}
    envv = [f"{k}={v}" for k, v in full.items()]
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *envv, *argv],
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
    )


def optsub_as(user: str, runs: list[list[str]], env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Run optsub ``runs`` (argv lists) as ``user``, concurrently; (exit code, stdout, stderr).

    Each run is a forked child of this (root) process that drops to the user's
    uid and gid (as ``setpriv`` would) and then calls optsub's entry point: the
    test's Python may live where other users cannot execute it (a pyenv under
    /root), so the modules optsub needs are imported here first, by a dry run.
    """
    import pwd

    from slurmopt.cli.optsub import run as optsub_run
    from slurmopt.optsub import spool as _spool  # noqa: F401 - imported before the uid drop
    from slurmopt.slurm import owners as _owners  # noqa: F401

    base = {"PATH": os.environ["PATH"], "HOME": "/tmp", **_slurm_env(), **env}
    warm = [a for a in runs[0] if a != "--hold"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        optsub_run(["--optsub-dry-run", "--optsub-json", *warm], dict(base))
    pw = pwd.getpwnam(user)
    results = []
    for i in range(0, len(runs), 50):  # at most 50 at once: a 2-core CI host
        results += _fork_runs(pw, runs[i : i + 50], base)
    return results


def _fork_runs(pw: Any, runs: list[list[str]], base: dict[str, str]) -> list[tuple[int, str, str]]:
    import traceback

    from slurmopt.cli.optsub import run as optsub_run

    children = []
    for argv in runs:
        out = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the wait
        err = tempfile.TemporaryFile()  # noqa: SIM115
        pid = os.fork()
        if pid == 0:  # the child
            code = 99
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
                os.environ.clear()
                os.environ.update(base)
                code = optsub_run(argv, dict(base))
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append((pid, out, err))
    results = []
    for pid, out, err in children:
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        results.append((code, out.read().decode(), err.read().decode()))
        out.close()
        err.close()
    return results


def _slurm_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("SLURM")}


def sbatch_as(user: str, jobs: JobTracker, *args: str) -> int:
    res = as_user(user, ["sbatch", "--parsable", *args])
    assert res.returncode == 0, res.stderr
    return jobs.track(int(res.stdout.strip().split(";")[0]))


def append_as(user: str, path: Path, records: list[dict[str, Any]]) -> None:
    """``user`` appends JSON lines to ``path`` (creating it as theirs)."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    res = as_user(user, ["sh", "-c", 'cat >> "$1"', "sh", str(path)], input=text)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def site(users: dict[str, int]) -> Iterator[dict[str, Any]]:
    """A world-traversable work dir with the shared spool (1777), root-only files and the DB."""
    top = Path(tempfile.mkdtemp(prefix="slurmopt-sec-", dir="/tmp"))
    os.chmod(top, 0o755)
    spool = top / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)
    private = top / "root-only"
    private.mkdir(mode=0o700)
    secret = private / "secret.json"
    secret.write_text(
        json.dumps({"key": MARKER, "user": "root", "job_id": 1, "data": {"s": MARKER}}) + "\n"
    )
    os.chmod(secret, 0o600)
    url = f"sqlite:///{private / 'history.sqlite'}"
    db.upgrade(db.make_engine(url))
    shared = top / "state"
    shared.mkdir(mode=0o755)
    try:
        yield {
            "top": top,
            "spool": spool,
            "private": private,
            "secret": secret,
            "db": private / "history.sqlite",
            "url": url,
            "cache": shared / "state-cache.json",
            "shared": shared,
        }
    finally:
        shutil.rmtree(top, ignore_errors=True)


def rows(url: str, model: type) -> list[Any]:
    engine = db.make_engine(url)
    with db.transaction(engine) as s:
        return list(s.execute(select(model)).scalars())


def by_id(ids: list[int]) -> dict[int, Job]:
    return {j.job_id: j for j in CliBackend().snapshot().jobs if j.job_id in ids}


def cycle(site: dict[str, Any]) -> CycleReport:
    return run_cycle(
        CliBackend(),
        CFG,
        OPT,
        store=Store(str(site["url"]), site["spool"]),
        lock_path=site["private"] / "lock",
        cache_path=site["cache"],
        routing_path=site["shared"] / "routing.txt",
    )


def optsub_record(job_id: int, user: str, allowed: list[str], **data: Any) -> dict[str, Any]:
    return {
        "key": f"forged-{uuid.uuid4().hex}",
        "at": int(time.time()),
        "kind": "optsub.decision",
        "job_id": job_id,
        "user": user,
        "data": {"allowed": allowed, "partition": allowed[0], "sbatch_rc": 0, **data},
    }


def fill_v100(jobs: JobTracker) -> list[int]:
    """Two 4-GPU root blockers: v100 is full for 25 s, h100 idle."""
    argv = ["-p", "v100", "--gres=gpu:v100:4", "-t", "1", "--mem=1000", "--wrap", "sleep 25"]
    ids = [jobs.submit("-J", "sec-block", *argv) for _ in range(2)]
    wait_for(lambda: all(j.running for j in by_id(ids).values()), timeout=30)
    return ids


# ---------------------------------------------------------------------------
# attack 1: steering another user's job


def test_forged_records_never_make_another_users_job_managed(
    users: dict[str, int], site: dict[str, Any], jobs: JobTracker
) -> None:
    spool = site["spool"]
    fill_v100(jobs)
    # alice never opted in: plain sbatch jobs waiting on v100 (the h100s are idle)
    plain = [
        sbatch_as(ALICE, jobs, "-J", "sec-alice", "-p", "v100", *ONE_GPU, "--wrap", "sleep 2")
        for _ in range(4)
    ]
    # mallory's own job, opted in through her own spool file: the channel works
    own = sbatch_as(MALLORY, jobs, "-J", "sec-mal", "-p", "v100", *ONE_GPU, "--wrap", "sleep 2")
    everywhere = ["v100", "h100", "a100", "t4"]
    append_as(
        MALLORY,
        spool / f"optsub-{MALLORY}.jsonl",
        [
            optsub_record(own, MALLORY, ["v100", "h100"]),
            # 1. alice's job id, the widest allowed set, GPU type not pinned
            optsub_record(plain[0], MALLORY, everywhere, pinned=False),
            # forged cluster (empty and the real name both) on another of alice's jobs
            optsub_record(plain[1], MALLORY, everywhere, cluster=""),
            # a record claiming to be alice's, in mallory's own file
            optsub_record(plain[2], ALICE, everywhere),
            # job ids that do not exist yet (alice's next job will get one of them)
            *[optsub_record(plain[-1] + k, MALLORY, everywhere) for k in range(2, 12)],
        ],
    )
    # a file named after alice, written by mallory
    append_as(
        MALLORY, spool / f"optsub-{ALICE}.x.jsonl", [optsub_record(plain[3], ALICE, everywhere)]
    )
    later = sbatch_as(ALICE, jobs, "-J", "sec-alice", "-p", "v100", *ONE_GPU, "--wrap", "sleep 2")
    assert plain[-1] < later <= plain[-1] + 11  # one of the ids mallory wrote records for

    report = cycle(site)

    after = by_id([*plain, later, own])
    victims = [*plain, later]
    assert all(after[j].partitions == ("v100",) for j in victims if j in after), after
    assert not {j.job_id for j in report.jobs} & set(victims), report.to_dict()
    moved = {j.job_id: j for j in report.jobs if j.outcome == "applied"}
    assert own in moved and moved[own].to_partition == "h100", report.to_dict()
    assert moved[own].managed_by == f"optsub:{MALLORY}"
    # every refusal is on the audit trail, with who and why
    refusals = rows(str(site["url"]), TrustRefusal)
    whys = {(r.component, r.who, r.why) for r in refusals}
    assert ("controller", MALLORY, f"record written by {MALLORY} for a job of {ALICE}") in whys
    assert any(
        c == "ingest" and w == MALLORY and "claims user 'soalice'" in y for c, w, y in whys
    ), whys
    assert any(c == "ingest" and "named after another user" in y for c, _w, y in whys), whys
    decided = rows(str(site["url"]), Decision)
    applied = [d for d in decided if d.source == "controller" and d.applied]
    assert [(d.job_id, d.managed_by) for d in applied] == [(own, f"optsub:{MALLORY}")]
    # the report shows the channel for every move
    res = subprocess.run(
        [PY, "-m", "slurmopt", "report", "decisions", "--db", site["url"], "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert f"optsub:{MALLORY}" in res.stdout


def test_users_cannot_forge_the_plugin_channel(users: dict[str, int], jobs: JobTracker) -> None:
    """The plugin's channel is AdminComment: slurmctld refuses it from a user, even the owner."""
    own = sbatch_as(MALLORY, jobs, "-H", "-J", "sec-ac", "-p", "v100", *ONE_GPU, "--wrap", "true")
    victim = sbatch_as(ALICE, jobs, "-H", "-J", "sec-ac", "-p", "v100", *ONE_GPU, "--wrap", "true")
    for job in (own, victim):
        res = as_user(
            MALLORY,
            ["scontrol", "update", f"JobId={job}", "AdminComment=slurmopt:allowed=v100,h100"],
        )
        assert res.returncode != 0, res
    after = by_id([own, victim])
    assert all(not (j.admin_comment or "") for j in after.values()), after


# ---------------------------------------------------------------------------
# attack 2: root reading what a user points it at; bounds


def test_hostile_spool_files_are_refused_counted_and_never_followed(
    users: dict[str, int], site: dict[str, Any]
) -> None:
    spool, secret, dbfile = site["spool"], site["secret"], site["db"]
    m = MALLORY
    # symlinks to a root-only file and to the database
    as_user(m, ["ln", "-s", str(secret), str(spool / f"optsub-{m}.jsonl")])
    as_user(m, ["ln", "-s", str(dbfile), str(spool / f"optsub-{m}.db.jsonl")])
    # hard links to them (made as root: fs.protected_hardlinks=1 stops mallory here;
    # a site without that protection must still be safe)
    os.link(secret, spool / f"optsub-{m}.hard.jsonl")
    os.link(dbfile, spool / f"optsub-{m}.hdb.jsonl")
    # a FIFO nobody writes: a blocking open would stall ingestion forever
    assert as_user(m, ["mkfifo", str(spool / f"optsub-{m}.fifo.jsonl")]).returncode == 0
    # a 1 GB file (sparse), a 5 MB line, deeply nested JSON, then valid records
    as_user(m, ["truncate", "-s", "1G", str(spool / f"optsub-{m}.huge.jsonl")])
    good = optsub_record(999_001, m, ["v100"])
    append_as(m, spool / f"optsub-{m}.lines.jsonl", [good])
    lines = str(spool / f"optsub-{m}.lines.jsonl")
    long_and_deep = (
        'head -c 5242880 /dev/zero | tr "\\0" x >> "$1"; echo >> "$1"; '
        'head -c 200000 /dev/zero | tr "\\0" "[" >> "$1"; echo >> "$1"'
    )
    assert as_user(m, ["sh", "-c", long_and_deep, "sh", lines]).returncode == 0
    # a million tiny files stands in as 3000 (the per-user cap is 64 per run)
    tiny = 'i=0; while [ $i -lt 3000 ]; do echo "{}" > "$1/optsub-$2.t$i.jsonl"; i=$((i+1)); done'
    assert as_user(m, ["sh", "-c", tiny, "sh", str(spool), m]).returncode == 0
    # alice's own record must still get through in the same run
    alice_rec = optsub_record(999_002, ALICE, ["a100"])
    append_as(ALICE, spool / f"optsub-{ALICE}.jsonl", [alice_rec])
    for f in spool.iterdir():
        if not f.is_symlink() and f.is_file():
            os.utime(f, (1, 1))  # past the writers' grace period
    before = (secret.read_bytes(), os.stat(secret).st_mode)
    engine = db.make_engine(str(site["url"]))

    st = ingest_spool(engine, spool)

    stored = rows(str(site["url"]), SpoolRecord)
    assert all(MARKER not in json.dumps(r.data) for r in stored)
    assert {r.key for r in stored if r.owner == ALICE} == {f"key:{alice_rec['key']}"}
    assert f"key:{good['key']}" in {r.key for r in stored if r.owner == m}
    assert st.refused_files >= 6 and st.deferred >= 3000 - 64, st.to_dict()
    assert st.bad_lines >= 2  # the 5 MB line and the nested one
    # root-only files untouched, the database intact
    assert (secret.read_bytes(), os.stat(secret).st_mode) == before
    with sqlite3.connect(dbfile) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    refusals = rows(str(site["url"]), TrustRefusal)
    whys = " | ".join(f"{r.who}:{r.what}:{r.why}" for r in refusals)
    for needle in ("a symlink", "hard links", "not a regular file", "more than", "over the caps"):
        assert needle in whys, whys
    # a spool directory replaced by a symlink (to a root-only directory) is not read
    other = site["top"] / "drop"
    other.mkdir()
    os.chmod(other, 0o1777)
    shutil.copy(secret, site["private"] / "optsub-root.jsonl")
    as_user(m, ["ln", "-s", str(site["private"]), str(other / "spool")])
    st2 = ingest_spool(engine, other / "spool")
    assert st2.files == 0 and st2.refusals and "symlink" in st2.refusals[0].why
    assert all(MARKER not in json.dumps(r.data) for r in rows(str(site["url"]), SpoolRecord))
    assert (site["private"] / "optsub-root.jsonl").exists()


# ---------------------------------------------------------------------------
# attack 3: steering another user's optsub decision


DECIDE = ["-p", "a100,h100", "--gres=gpu:1", "-t", "30", "--mem=1000", "--wrap", "sleep 1"]


def _decide_as(user: str, site: dict[str, Any], *, live_refresh: bool = True) -> str:
    return _decision_as(user, site, live_refresh=live_refresh)["partition"]


def _decision_as(user: str, site: dict[str, Any], *, live_refresh: bool = True) -> dict[str, Any]:
    """optsub's choice for ``user`` (with its live squeue refresh of the cache, or without:
    then the spool overlay's own attribution is all that stands between mallory and alice)."""
    conf = site["shared"] / f"optsub-{live_refresh}.toml"
    conf.write_text(f"[optsub]\nlive_refresh = {str(live_refresh).lower()}\n")
    env = {
        "SLURMOPT_SPOOL_DIR": str(site["spool"]),
        "SLURMOPT_STATE_CACHE": str(site["cache"]),
        "SLURMOPT_CONFIG": str(conf),
    }
    ((code, out, err),) = optsub_as(user, [["--optsub-dry-run", "--optsub-json", *DECIDE]], env)
    assert code == 0, err
    decision: dict[str, Any] = json.loads(out)
    return decision


def test_made_up_recent_submissions_do_not_steer_another_users_optsub(
    users: dict[str, int], site: dict[str, Any]
) -> None:
    cycle(site)  # writes the state cache (mode 0644) as the controller does
    assert site["cache"].stat().st_mode & 0o777 == 0o644
    baseline = _decide_as(ALICE, site)
    assert baseline == "h100" == _decide_as(ALICE, site, live_refresh=False)  # idle, fastest
    fake = [
        {
            **optsub_record(900_000 + i, MALLORY, ["h100"]),
            "at": int(time.time()) + 5,
        }
        for i in range(200)
    ]
    req = {
        "nodes_min": 1,
        "ntasks": 1,
        "gpus_per_node": 8,
        "gpu_type": "h100",
        "time_limit_s": 86400,
    }
    for r in fake:
        r["data"]["request"] = req
    append_as(MALLORY, site["spool"] / f"optsub-{MALLORY}.jsonl", fake[:100])
    # ... and some claiming to be alice's own, in mallory's file
    append_as(
        MALLORY,
        site["spool"] / f"optsub-{MALLORY}.b.jsonl",
        [{**r, "user": ALICE} for r in fake[100:]],
    )
    assert _decide_as(ALICE, site) == baseline
    plain = _decision_as(ALICE, site, live_refresh=False)
    assert plain["partition"] == baseline
    # every one of mallory's records counted as refused where alice sees it (--optsub-json)
    assert "(200 spool record(s) of other users not counted)" in plain["state_source"], plain
    # control: the same submissions made by alice herself do count (in the overlay alone:
    # the live refresh would drop them too, as squeue does not know their job ids)
    append_as(
        ALICE, site["spool"] / f"optsub-{ALICE}.jsonl", [{**r, "user": ALICE} for r in fake[:100]]
    )
    assert _decide_as(ALICE, site, live_refresh=False) == "a100"


# ---------------------------------------------------------------------------
# never losing a submission in a hostile spool


CONCURRENT = int(os.environ.get("SLURMOPT_SEC_CONCURRENT", "20"))
"""optsub runs per spool kind (``SLURMOPT_SEC_CONCURRENT=500`` for the full stress run)."""


@pytest.mark.parametrize("kind", ["hostile", "read-only"])
def test_concurrent_optsub_in_a_hostile_spool_submits_each_job_once(
    users: dict[str, int], site: dict[str, Any], jobs: JobTracker, kind: str
) -> None:
    spool = site["spool"]
    if kind == "hostile":
        # mallory plants a FIFO under alice's file name (a blocking open would hang optsub)
        fifo = str(spool / f"optsub-{ALICE}.jsonl")
        assert as_user(MALLORY, ["mkfifo", "-m", "666", fifo]).returncode == 0
    else:
        os.chmod(spool, 0o755)  # nobody but root may write: optsub records nothing
    n = CONCURRENT
    tag = f"sec-{uuid.uuid4().hex[:6]}"
    argv = ["-p", "a100,h100", "--gres=gpu:1", "-t", "5", "--mem=100", "--chdir=/tmp"]
    runs = [
        ["--hold", "-J", f"{tag}-{i}", *argv, "-o", "/dev/null", "--wrap", "true"] for i in range(n)
    ]
    env = {"SLURMOPT_SPOOL_DIR": str(spool), "SLURMOPT_STATE_CACHE": str(site["cache"])}
    results = optsub_as(ALICE, runs, env)
    listed = slurm_cmd(["squeue", "-h", "-u", ALICE, "-o", "%i %j"]).stdout.splitlines()
    mine = [line.split() for line in listed if tag in line]
    for jid, _name in mine:
        jobs.track(int(jid))
    assert all(code == 0 for code, _o, _e in results), [e for c, _o, e in results if c]
    assert sorted(name for _jid, name in mine) == sorted(f"{tag}-{i}" for i in range(n))
    for f in spool.iterdir():
        if f.is_file() and not f.is_symlink():
            os.utime(f, (1, 1))
    for _cycle in range(n // 64 + 2):  # a planted trap means one file per optsub: 64 per run
        if not ingest_spool(db.make_engine(site["url"]), spool).deferred:
            break
    attributed = [r for r in rows(site["url"], SpoolRecord) if r.owner == ALICE]
    if kind == "hostile":  # the records went to files of alice's own, attributed to her
        assert len(attributed) == n
    else:  # one warning line each, nothing recorded anywhere
        assert attributed == []
        assert all("optsub: warning:" in e for _c, _o, e in results)
