"""optsub end to end against a fake sbatch: pass-through, fail-open, exactly one submission."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from slurmopt.cli.optsub import UsageError, split_own
from slurmopt.statecache import write_cache
from tests.unit.optsub.conftest import make_snapshot

FAKE = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    stdin = "--stdin" in os.environ.get("FAKE_MODE", "")
    data = sys.stdin.buffer.read().decode() if stdin else None
    with open(os.environ["FAKE_LOG"], "a") as fh:
        fh.write(json.dumps({{"argv": sys.argv[1:], "stdin": data}}) + "\\n")
    rc = int(os.environ.get("FAKE_RC", "0"))
    if os.environ.get("FAKE_CREATED_BUT_FAILED"):
        sys.stderr.write("sbatch: error: Batch job submission failed: Socket timed out\\n")
        sys.exit(1)
    if rc:
        msg = "Batch job submission failed: Invalid partition name specified"
        sys.stderr.write("sbatch: error: " + msg + "\\n")
        sys.exit(rc)
    if "-Q" in sys.argv or "--quiet" in sys.argv:
        pass
    elif "--parsable" in sys.argv:
        print("42;cluster")
    else:
        print("Submitted batch job 42")
    """
)


FAKE_SQUEUE = textwrap.dedent(
    """\
    #!{python}
    # the fake sbatch's jobs: job 42 carries the comment of the last call (if any)
    import json, os, sys
    if os.environ.get("FAKE_SQUEUE_FAIL"):
        sys.stderr.write("squeue: error: Socket timed out on send/recv operation\\n")
        sys.exit(1)
    with open(os.environ["FAKE_LOG"]) as fh:
        argv = json.loads(fh.read().splitlines()[-1])["argv"]
    tags = [a.split("=", 1)[1] for a in argv if a.startswith("--comment=")]
    print("7|other")
    if tags and not os.environ.get("FAKE_NOT_CREATED"):
        print("42|" + tags[-1])
    """
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "sbatch"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    squeue = bindir / "squeue"
    squeue.write_text(FAKE_SQUEUE.format(python=sys.executable))
    squeue.chmod(0o755)
    cache = tmp_path / "cache.json"
    snap = make_snapshot(now=int(time.time()))
    write_cache(snap, cache)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    e.update(
        SLURMOPT_SBATCH=str(fake),
        FAKE_LOG=str(tmp_path / "log.jsonl"),
        SLURMOPT_STATE_CACHE=str(cache),
        SLURMOPT_SPOOL_DIR=str(tmp_path / "spool"),
        HOME=str(tmp_path),
        SLURMOPT_CONFIG=str(tmp_path / "cfg.toml"),
        PATH=f"{bindir}:{os.environ.get('PATH', '')}",
    )
    (tmp_path / "spool").mkdir()
    # a generous time limit: the suite may run on a loaded machine
    (tmp_path / "cfg.toml").write_text(
        "[optsub]\ncache_max_age_s = 3600.0\nlive_read = false\ndecision_timeout_s = 30.0\n"
    )
    return e


def optsub(
    args: list[str], env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", "from slurmopt.cli.optsub import main; main()", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def untag(argv: object) -> list[str]:
    """The argv without optsub's tag, which must come first."""
    assert isinstance(argv, list) and argv[0].startswith("--comment=optsub:"), argv
    return argv[1:]


def records(env: dict[str, str]) -> list[dict[str, Any]]:
    return [
        json.loads(x)
        for f in Path(env["SLURMOPT_SPOOL_DIR"]).glob("*.jsonl")
        for x in f.read_text().splitlines()
    ]


def calls(env: dict[str, str]) -> list[dict[str, Any]]:
    p = Path(env["FAKE_LOG"])
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def script(tmp_path: Path, body: str = "#!/bin/sh\n#SBATCH -p a100,h100\ntrue\n") -> str:
    s = tmp_path / "job.sh"
    s.write_text(body)
    return str(s)


def test_places_and_passes_output_through(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    r = optsub(["--gres=gpu:a100:1", "-t", "60", s], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Submitted batch job 42\n"
    assert r.stderr == b""
    (call,) = calls(env)
    assert untag(call["argv"]) == ["--partition=h100", "--gres=gpu:h100:1", "-t", "60", s]
    recs = [
        json.loads(x)
        for f in Path(env["SLURMOPT_SPOOL_DIR"]).glob("*.jsonl")
        for x in f.read_text().splitlines()
    ]
    assert len(recs) == 1 and recs[0]["job_id"] == 42
    assert recs[0]["data"]["allowed"] == ["a100", "h100"]
    assert recs[0]["data"]["partition"] == "h100"


def test_parsable_and_error_pass_through(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    r = optsub(["--parsable", s], env)
    assert (r.returncode, r.stdout) == (0, b"42;cluster\n")
    r2 = optsub(["-p", "nope", s], {**env, "FAKE_RC": "1"})
    assert r2.returncode == 1
    assert r2.stderr.endswith(b"Invalid partition name specified\n")
    assert len(calls(env)) == 2


@pytest.mark.parametrize("fault", ["config", "state", "optimizer", "timeout"])
def test_fail_open_submits_exactly_once_with_original_args(
    env: dict[str, str], tmp_path: Path, fault: str
) -> None:
    s = script(tmp_path)
    e = {**env, "SLURMOPT_OPTSUB_FAULT": fault}
    if fault == "timeout":
        Path(e["SLURMOPT_CONFIG"]).write_text(
            "[optsub]\ncache_max_age_s = 3600.0\nlive_read = false\ndecision_timeout_s = 0.5\n"
        )
    r = optsub(["-J", "x", "--gpus=1", s, "a1"], e)
    assert r.returncode == 0
    assert r.stdout == b"Submitted batch job 42\n"
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optsub: warning:")
    assert [c["argv"] for c in calls(env)] == [["-J", "x", "--gpus=1", s, "a1"]]


def test_corrupt_cache_and_bad_config_fail_open(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    Path(env["SLURMOPT_STATE_CACHE"]).write_text("{not json")
    r = optsub(["--gpus=1", s], env)
    assert r.returncode == 0 and len(r.stderr.decode().splitlines()) == 1
    Path(env["SLURMOPT_CONFIG"]).write_text("[optsub]\nno_such_key = 1\n")
    r2 = optsub(["--gpus=1", s], env)
    assert r2.returncode == 0 and b"no_such_key" in r2.stderr
    assert [c["argv"] for c in calls(env)] == [["--gpus=1", s], ["--gpus=1", s]]


def test_stdin_script_is_read_once_and_fed(env: dict[str, str]) -> None:
    body = b"#!/bin/sh\n#SBATCH -p a100,h100\n#SBATCH --gpus=a100:1\necho hi\n"
    r = optsub(["-t", "5"], {**env, "FAKE_MODE": "--stdin"}, stdin=body)
    assert r.returncode == 0, r.stderr
    (call,) = calls(env)
    assert call["stdin"] == body.decode()
    assert untag(call["argv"]) == ["--partition=h100", "--gpus=h100:1", "-t", "5"]


def test_dry_run_explain_and_json(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    r = optsub(["--optsub-dry-run", "--gpus=1", s], env)
    assert r.returncode == 0 and calls(env) == []
    assert b"PARTITION" in r.stderr and b"submitting to h100" in r.stderr
    r2 = optsub(["--optsub-dry-run", "--optsub-json", "--gpus=1", s], env)
    doc = json.loads(r2.stdout)
    assert doc["partition"] == "h100" and doc["schema"].startswith("slurmopt.optsub")
    assert {c["partition"] for c in doc["candidates"]} == {"a100", "h100"}


def test_optsub_off_bypasses(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    r = optsub(["--gpus=1", s], {**env, "OPTSUB_OFF": "1"})
    assert r.returncode == 0
    assert [c["argv"] for c in calls(env)] == [["--gpus=1", s]]
    r2 = optsub(["--optsub-off", "-p", "a100,h100", s], env)
    assert r2.returncode == 0
    assert calls(env)[-1]["argv"] == ["-p", "a100,h100", s]


def test_spool_failure_does_not_change_outcome(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    r = optsub(["--gpus=1", s], {**env, "SLURMOPT_OPTSUB_FAULT": "spool"})
    assert r.returncode == 0 and r.stdout == b"Submitted batch job 42\n"
    assert b"not recorded" in r.stderr and len(calls(env)) == 1


def test_split_own() -> None:
    own, rest = split_own(["--optsub-explain", "--optsub-policy", "start", "-p", "a", "--optsub-x"])
    assert own.explain and own.policy == "start" and rest == ["-p", "a", "--optsub-x"]
    with pytest.raises(UsageError):
        split_own(["--optsub-bogus"])


EXIT_NOW = (
    "import atexit, sys\n"
    "from slurmopt.cli.optsub import exit_now\n"
    "atexit.register(lambda: sys.stdout.write(' atexit ran'))\n"
    "sys.stdout.write('buffered')\n"
    "sys.stderr.write('err')\n"
    "exit_now(int(sys.argv[1]))\n"
)


@pytest.mark.parametrize("status", [0, 3, -9])
def test_exit_now_flushes_and_runs_exit_handlers(status: int) -> None:
    r = subprocess.run(
        [sys.executable, "-c", EXIT_NOW, str(status)], capture_output=True, timeout=60, check=False
    )
    assert (r.returncode, r.stdout, r.stderr) == (status & 0xFF, b"buffered atexit ran", b"err")


def test_exit_now_failed_stdout_flush_is_status_120() -> None:
    code = (
        "import io, sys\n"
        "from slurmopt.cli.optsub import exit_now\n"
        "class Full(io.StringIO):\n"
        "    def flush(self): raise OSError(28, 'No space left on device')\n"
        "sys.stdout = Full()\n"
        "exit_now(0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert (r.returncode, r.stderr) == (120, b"")


def test_submit_path_imports_nothing_heavy(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    code = (
        "import sys\n"
        "from slurmopt.cli import optsub\n"
        "rc = optsub.run(sys.argv[1:], __import__('os').environ.copy())\n"
        "cached = set(sys.modules)\n"
        "import slurmopt.slurm.backend  # the live-read path\n"
        "bad = [m for m in ('sqlalchemy', 'numpy', 'scipy', 'deap', 'simanneal', 'click')"
        " if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(bad) + '\\n')\n"
        # the cached path (issue 16): neither logging nor the solvers' and plans' modules
        "slow = [m for m in ('logging', 'slurmopt.plans', 'slurmopt.optimize.search',"
        " 'slurmopt.optimize.incremental', 'slurmopt.slurm.backend') if m in cached]\n"
        "sys.stderr.write('SLOW=' + ','.join(slow) + '\\n')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "--gpus=1", s],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert b"HEAVY=\n" in r.stderr, r.stderr
    assert b"SLOW=\n" in r.stderr, r.stderr
    assert calls(env), "the job was submitted"


@pytest.mark.parametrize(
    ("out", "jid"),
    [
        (b"Submitted batch job 17\n", 17),
        (b"17\n", 17),
        (b"17;cluster\n", 17),
        (b"site banner\nSubmitted batch job 99\n", 99),
        (b"", None),
    ],
)
def test_job_id_from(out: bytes, jid: int | None) -> None:
    from slurmopt.slurm.sbatch_exec import job_id_from

    assert job_id_from(out) == jid


def test_missing_sbatch_gives_127(env: dict[str, str], tmp_path: Path) -> None:
    s = script(tmp_path)
    r = optsub(["--gpus=1", s], {**env, "SLURMOPT_SBATCH": str(tmp_path / "nope")})
    assert r.returncode == 127 and b"cannot run" in r.stderr


GPU_JOB = ["-p", "a100,h100", "--gres=gpu:a100:1", "-t", "60"]


def test_quiet_submission_is_recorded_with_the_id_found_by_its_tag(
    env: dict[str, str], tmp_path: Path
) -> None:
    r = optsub(["-Q", *GPU_JOB, script(tmp_path)], env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    (call,) = calls(env)
    tag = call["argv"][0].split("=", 1)[1]
    (rec,) = records(env)
    assert rec["job_id"] == 42
    assert (rec["data"]["tag"], rec["data"]["job_id_from"]) == (tag, "tag")


def test_failed_sbatch_whose_job_exists_reports_it_once_and_exits_0(
    env: dict[str, str], tmp_path: Path
) -> None:
    r = optsub(["--parsable", *GPU_JOB, script(tmp_path)], {**env, "FAKE_CREATED_BUT_FAILED": "1"})
    assert r.returncode == 0
    assert r.stdout == b"42\n"
    assert r.stderr.decode().splitlines() == [
        "sbatch: error: Batch job submission failed: Socket timed out",
        "optsub: sbatch reported a failure, but job 42 was created: not submitting again",
    ]
    assert len(calls(env)) == 1  # never submitted twice
    (rec,) = records(env)
    assert (rec["job_id"], rec["data"]["sbatch_rc"], rec["data"]["job_id_from"]) == (42, 1, "tag")


def test_failed_sbatch_without_a_job_keeps_sbatchs_status_and_stderr(
    env: dict[str, str], tmp_path: Path
) -> None:
    e = {**env, "FAKE_CREATED_BUT_FAILED": "1", "FAKE_NOT_CREATED": "1"}
    r = optsub([*GPU_JOB, script(tmp_path)], e)
    assert (r.returncode, r.stdout) == (1, b"")
    assert r.stderr == b"sbatch: error: Batch job submission failed: Socket timed out\n"
    (rec,) = records(env)
    assert rec["job_id"] is None and rec["data"]["job_id_from"] is None


def test_failed_lookup_warns_once_naming_the_tag(env: dict[str, str], tmp_path: Path) -> None:
    e = {**env, "FAKE_CREATED_BUT_FAILED": "1", "FAKE_SQUEUE_FAIL": "1"}
    r = optsub([*GPU_JOB, script(tmp_path)], e)
    assert r.returncode == 1
    (call,) = calls(env)
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("optsub: warning: cannot tell whether")
    assert call["argv"][0] in lines[1]


def test_a_comment_of_the_users_own_is_kept_and_not_tagged(
    env: dict[str, str], tmp_path: Path
) -> None:
    s = script(tmp_path, "#!/bin/sh\n#SBATCH -p a100,h100\n#SBATCH --comment=mine\ntrue\n")
    r = optsub(["-Q", "--gres=gpu:a100:1", "-t", "60", s], env)
    assert r.returncode == 0
    (call,) = calls(env)
    assert not any(a.startswith("--comment") for a in call["argv"])
    (rec,) = records(env)
    assert rec["job_id"] is None and "tag" not in rec["data"]


def test_unwritable_spool_warns_once_and_writes_nowhere_else(
    env: dict[str, str], tmp_path: Path
) -> None:
    spool_dir = Path(env["SLURMOPT_SPOOL_DIR"])
    spool_dir.rmdir()  # missing: optsub does not create a shared spool
    r = optsub([*GPU_JOB, script(tmp_path)], env)
    assert r.returncode == 0 and r.stdout == b"Submitted batch job 42\n"
    assert r.stderr.decode().splitlines() == [
        f"optsub: warning: decision not recorded in spool {spool_dir}: spool {spool_dir} "
        "does not exist (an admin creates it, mode 1777); job 42 is submitted"
    ]
    assert not spool_dir.exists()
    assert not list(tmp_path.rglob("optsub-*.jsonl"))  # not in ~/.local/state either
    assert len(calls(env)) == 1


def test_sbatch_timeout_applies_while_sbatch_keeps_stdout_open(tmp_path: Path) -> None:
    """A sbatch hung on a stopped slurmctld is stopped at the time limit (not at EOF)."""
    import io

    from slurmopt.slurm.sbatch_exec import run_sbatch

    hung = tmp_path / "hung"
    hung.write_text("#!/bin/sh\necho partial\nexec sleep 60\n")
    hung.chmod(0o755)
    out = io.BytesIO()
    res = run_sbatch(str(hung), [], stdin_data=None, timeout=1.0, out=out)
    assert res.error == f"{hung} did not finish in 1 s" and out.getvalue() == b"partial\n"
    assert res.returncode == -9 and res.job_id is None  # killed, not waited for


def test_early_refresh_runs_again_when_another_optsub_recorded_a_job(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh's squeue starts before the submit lock (issue 16): it is used when the
    spool did not change until the lock was taken, else (another optsub recorded a job
    that it may not show) a second squeue runs and its answer is used."""
    from slurmopt.cli import optsub as cli
    from slurmopt.slurm import live

    write_cache(make_snapshot(now=int(time.time()) - 10), Path(env["SLURMOPT_STATE_CACHE"]))
    fake = tmp_path / "refresh-squeue"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    e = {**env, "SLURMOPT_SQUEUE": str(fake)}
    for k, v in e.items():  # in-process: sbatch gets this process's environment
        monkeypatch.setenv(k, v)
    started: list[str] = []
    read: list[int] = []

    class Counted(live.Started):
        __slots__ = ()

        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, **k)  # type: ignore[arg-type]
            started.append(self.squeue)

        def result(self, timeout: float) -> dict[int, live.LiveJob]:
            read.append(len(started))
            return super().result(timeout)

    monkeypatch.setattr(live, "Started", Counted)
    s = script(tmp_path)
    assert cli.run(["--gpus=1", s], e) == 0
    assert (started, read) == ([str(fake)], [1])  # one squeue, started early, read
    marks = iter([(("optsub-a.jsonl", 10, 1),), (("optsub-a.jsonl", 20, 2),)])
    monkeypatch.setattr(cli, "_spool_mark", lambda cfg, env: next(marks))
    started.clear()
    assert cli.run(["--gpus=1", s], e) == 0
    assert (started, read[1:]) == ([str(fake), str(fake)], [2])  # the second one is read
    assert len(calls(env)) == 2


def test_spool_mark_sees_a_new_record(env: dict[str, str]) -> None:
    from slurmopt.cli.optsub import _spool_mark
    from slurmopt.optsub.config import OptsubConfig

    cfg = OptsubConfig()
    before = _spool_mark(cfg, env)
    assert before == _spool_mark(cfg, env) == ()
    with open(Path(env["SLURMOPT_SPOOL_DIR"]) / "optsub-other.jsonl", "a") as fh:
        fh.write("{}\n")
    assert _spool_mark(cfg, env) != before
    assert _spool_mark(cfg, {**env, "SLURMOPT_SPOOL_DIR": "/nonexistent/spool"}) is None
