"""``optsub``: a drop-in sbatch that places the job well, explains why, and never loses it.

Usage: ``optsub [--optsub-...] <any sbatch arguments>``. optsub's own options
are long, prefixed and come first; everything after them is sbatch's, parsed
by :mod:`slurmopt.slurm.sbatch_args` (Click would eat parts of sbatch's
arguments, so Click is not used here). ``OPTSUB_OFF=1`` or ``--optsub-off``
runs sbatch directly (exec).

Fail-open: if anything of slurmopt fails (configuration, state, optimizer,
the decision's time limit), optsub prints one warning line on stderr and runs
sbatch with exactly the user's arguments. sbatch runs once, never retried;
its stdout, stderr and exit status are the user's.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, NamedTuple, NoReturn

USAGE = """usage: optsub [--optsub-explain] [--optsub-dry-run] [--optsub-json]
              [--optsub-policy completion|start|keep] [--optsub-off] <sbatch arguments>
optsub submits with sbatch, choosing the partition (within the ones you allow)
where the job is expected to finish first. OPTSUB_OFF=1 bypasses it.
See docs/optsub.md.
"""


SLOW_FAILURE_S = 5.0
"""sbatch failing after this long points to a slow slurmctld (rejections are immediate)."""
SETTLE_S = 2.0
"""How long optsub lets such a slurmctld catch up before it looks the job up."""


class Own:
    """optsub's own options (a plain class: cheap to define on the submit path)."""

    __slots__ = ("dry_run", "explain", "help", "json", "off", "policy")

    def __init__(self) -> None:
        self.explain = False
        self.dry_run = False
        self.json = False
        self.off = False
        self.policy: str | None = None
        self.help = False


class DecisionTimeout(Exception):
    """The decision ran past its time limit."""


class UsageError(Exception):
    """A bad ``--optsub-...`` option."""


def split_own(argv: Sequence[str]) -> tuple[Own, list[str]]:
    """Take optsub's leading ``--optsub-*`` options off ``argv``.

    Raises:
        UsageError: an unknown ``--optsub-`` option or a missing policy name.
    """
    own = Own()
    i = 0
    while i < len(argv) and argv[i].startswith("--optsub-"):
        name, eq, val = argv[i].partition("=")
        flag = {
            "--optsub-explain": "explain",
            "--optsub-dry-run": "dry_run",
            "--optsub-json": "json",
            "--optsub-off": "off",
            "--optsub-help": "help",
        }
        if name in flag and not eq:
            setattr(own, flag[name], True)
        elif name == "--optsub-policy":
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError("--optsub-policy needs a name")
                i += 1
                val = argv[i]
            own.policy = val
        else:
            raise UsageError(f"unknown option {argv[i]}")
        i += 1
    return own, list(argv[i:])


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`DecisionTimeout` in the main thread after ``seconds`` (SIGALRM)."""

    def _alarm(signum: int, frame: FrameType | None) -> None:
        raise DecisionTimeout(f"decision took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _read_script(cl: Any, stdin_data: bytes | None) -> str | None:
    if cl.wrap is not None:
        return None
    if stdin_data is not None:
        return stdin_data.decode("utf-8", "surrogateescape")
    path = cl.script_path
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None  # sbatch reports it


_LOCK: list[int] = []
"""The submit lock's descriptor while this process holds it (:mod:`slurmopt.optsub.submitlock`)."""


def _lock(cfg: Any, env: dict[str, str]) -> None:
    """Take the spool's submit lock, waiting at most ``cfg.submit_lock_s`` (else go without)."""
    if _LOCK or cfg.submit_lock_s <= 0:
        return
    from slurmopt.optsub import spool, submitlock

    fd = submitlock.acquire(spool.spool_dir(cfg.spool_dir, env), cfg.submit_lock_s)
    if fd is not None:
        _LOCK.append(fd)


def _unlock() -> None:
    """Give the submit lock back (if held)."""
    if _LOCK:
        from slurmopt.optsub import submitlock

        submitlock.release(_LOCK.pop())


class Decided(NamedTuple):
    """What :func:`_decide` found."""

    decision: Any
    cfg: Any
    sbatch: str | None
    parsed: Any


def _decide(cl: Any, own: Own, env: dict[str, str]) -> Decided:
    """Load config, read state, decide."""
    from slurmopt.optsub import config as oconf

    cfg, opt_cfg = oconf.load(env)
    cfg = oconf.with_policy(cfg, own.policy)
    fault = env.get(oconf.ENV_FAULT, "")
    with time_limit(cfg.decision_timeout_s):
        if fault == "timeout":
            time.sleep(cfg.decision_timeout_s + 5)
        mark = _spool_mark(cfg, env) if cfg.live_refresh else None
        started = _start_refresh(cfg, env)
        try:
            from slurmopt.optsub.decide import passthrough, scope
            from slurmopt.slurm.sbatch_args import combine

            parsed = combine(cl.cmdline, env, cl.script)
            sub, why = scope(parsed, cfg)
            if sub is None:
                decision = passthrough(parsed, why, policy=cfg.policy, now=time.time())
                return Decided(decision, cfg, cfg.sbatch, parsed)
            if not own.dry_run:  # from before the state is read until the record is written
                _lock(cfg, env)
            if started is not None and (mark is None or _spool_mark(cfg, env) != mark):
                started.discard()  # another optsub recorded a job since: squeue runs again
                started = None
            from slurmopt.optsub.state import get_state_full

            if started is not None:  # imported anyway; here they load while squeue runs
                from slurmopt.optimize import problem  # noqa: F401
                from slurmopt.optsub import fresh  # noqa: F401
            now = time.time()
            user = _user()
            snap, source, runtimes, queue, ratio = get_state_full(
                cfg, now=now, env=env, user=user, started=started
            )
        finally:
            if started is not None:
                started.discard()
        if ratio:  # the controller's learned shares (it merged the site's prior in)
            from dataclasses import replace

            opt_cfg = replace(opt_cfg, limit_ratio={**opt_cfg.limit_ratio, **ratio})
        if fault == "optimizer":
            raise RuntimeError("injected optimizer fault (SLURMOPT_OPTSUB_FAULT=optimizer)")
        from slurmopt.optsub.decide import decide

        decision = decide(
            parsed,
            snap,
            cfg,
            opt_cfg,
            now=now,
            user=user,
            state_source=source,
            runtimes=runtimes,
            queue=queue,
        )
    return Decided(decision, cfg, cfg.sbatch, parsed)


def _spool_mark(cfg: Any, env: dict[str, str]) -> tuple[tuple[str, int, int], ...] | None:
    """Name, size and modification time of every spool file (None: unreadable).

    Taken before the early ``squeue`` starts and again once optsub holds the
    submit lock: when they differ, another optsub recorded a submission in
    between, which that ``squeue`` may not show, and it runs again (the
    answer must include every job submitted before the lock was taken).
    """
    from slurmopt.optsub import spool

    try:
        with os.scandir(spool.spool_dir(cfg.spool_dir, env)) as entries:
            out = []
            for e in entries:
                if e.name.startswith("optsub-"):
                    st = e.stat(follow_symlinks=False)
                    out.append((e.name, st.st_size, st.st_mtime_ns))
    except OSError:
        return None
    return tuple(sorted(out))


def _start_refresh(cfg: Any, env: dict[str, str]) -> Any:
    """The live refresh's one squeue, started now (None without ``live_refresh``).

    It starts once the configuration is read and runs while optsub parses the
    job, imports the rest of its decision, takes the submit lock and reads the
    state cache (the two CPUs of an idle login node work at once; issue 16).
    :func:`slurmopt.optsub.state.get_state_full` reads its answer, or runs it
    again when it started before the cached snapshot was taken (the refresh
    must be newer than the cache); :func:`_decide` runs it again when another
    optsub recorded a job before the lock was taken (:func:`_spool_mark`), and
    stops it when the job is submitted as written.
    """
    if not cfg.live_refresh:
        return None
    from slurmopt.slurm.live import Started, squeue_command

    return Started(squeue_command(cfg.sbatch, env), env)


class _Cmd(NamedTuple):
    cmdline: Any
    script: str | None


class Prepared(NamedTuple):
    """Everything before sbatch runs: the decision (None: fail open) and its inputs."""

    decision: Any
    cfg: Any
    parsed: Any
    sbatch: str
    stdin_data: bytes | None
    warning: str | None
    """The fail-open warning already printed (None: none)."""


def run(argv: Sequence[str], env: dict[str, str]) -> int:
    """optsub's whole flow; returns the exit status (sbatch's when it ran).

    :func:`split_own` (optsub's options), :func:`_prepare` (decide, or fail
    open), :func:`_show` (explain, JSON), then :func:`_submit` (sbatch once,
    the job id, the record).
    """
    try:
        own, rest = split_own(argv)
    except UsageError as exc:
        sys.stderr.write(f"optsub: error: {exc}\n{USAGE}")
        return 2
    if own.help:
        sys.stdout.write(USAGE)
        return 0
    from slurmopt.slurm.sbatch_exec import SBATCH, exec_sbatch

    sbatch = env.get("SLURMOPT_SBATCH") or SBATCH
    if env.get("OPTSUB_OFF") == "1" or own.off:
        try:
            exec_sbatch(sbatch, rest)
        except OSError as exc:
            sys.stderr.write(f"optsub: cannot run {sbatch}: {exc.strerror}\n")
            return 127
    try:
        prep = _prepare(own, rest, env, sbatch)
        _show(own, prep.decision)
        if own.dry_run:
            if prep.decision is None:
                sys.stderr.write("optsub: would submit unchanged: " + " ".join(rest) + "\n")
            return 0
        return _submit(prep, rest, env)
    finally:
        _unlock()


def _prepare(own: Own, rest: list[str], env: dict[str, str], sbatch: str) -> Prepared:
    """Read the script, decide; on any failure, one warning and no decision (fail open)."""
    stdin_data: bytes | None = None
    try:
        from slurmopt.slurm.sbatch_args import parse_command_line

        cl = parse_command_line(rest)
        if cl.script_from_stdin and not (own.dry_run and sys.stdin.isatty()):
            stdin_data = sys.stdin.buffer.read()
        decision, cfg, configured, parsed = _decide(
            _Cmd(cl, _read_script(cl, stdin_data)), own, env
        )
        sbatch = env.get("SLURMOPT_SBATCH") or configured or sbatch
        return Prepared(decision, cfg, parsed, sbatch, stdin_data, None)
    except BaseException as exc:  # fail open on anything but exit requests
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        warning = f"optsub: warning: {type(exc).__name__}: {exc}; submitting your job unchanged"
        sys.stderr.write(warning + "\n")
        return Prepared(None, None, None, sbatch, stdin_data, warning)


def _show(own: Own, decision: Any) -> None:
    """``--optsub-explain`` (stderr) and ``--optsub-json`` (stdout)."""
    if decision is not None and (own.explain or (own.dry_run and not own.json)):
        from slurmopt.optsub.explain import table

        sys.stderr.write(table(decision))
    if own.json:
        from slurmopt.optsub.explain import as_json

        doc = as_json(decision) if decision is not None else '{"action":"fallback"}'
        sys.stdout.write(doc + "\n")
        sys.stdout.flush()


def _submit(prep: Prepared, rest: list[str], env: dict[str, str]) -> int:
    """Run sbatch once (tagged when optsub placed the job), find the job id, record."""
    from slurmopt.optsub.jobid import may_tag, new_tag
    from slurmopt.slurm.sbatch_exec import run_sbatch

    final = list(prep.decision.argv) if prep.decision is not None else list(rest)
    tag = new_tag() if may_tag(prep.decision, prep.parsed) else None
    if tag is not None:
        final = [f"--comment={tag}", *final]
    waits, quiet, parsable = _flags(final)
    if waits:  # sbatch --wait returns when the job ends: nobody waits for that
        _unlock()
    timeout = None if waits else (prep.cfg.sbatch_timeout_s if prep.cfg is not None else 600.0)
    started = time.monotonic()
    res = run_sbatch(
        prep.sbatch, final, stdin_data=prep.stdin_data, timeout=timeout, out=sys.stdout.buffer
    )
    if res.error:
        sys.stderr.write(f"optsub: {res.error}\n")
    slow = time.monotonic() - started >= SLOW_FAILURE_S and (res.returncode != 0 or res.error)
    settle = SETTLE_S if slow else 0.0
    outcome = _job_id(res, tag, prep.cfg, settle, waits=waits, quiet=quiet, parsable=parsable)
    if outcome.stdout:
        sys.stdout.buffer.write(outcome.stdout)
        sys.stdout.flush()
    if outcome.message:
        sys.stderr.write(outcome.message + "\n")
    data: dict[str, Any] = (
        prep.decision.to_dict()
        if prep.decision is not None
        else {"action": "fallback", "original": rest, "argv": final}
    )
    data |= {"warning": prep.warning, "sbatch_rc": res.returncode}
    if tag is not None:
        data |= {"tag": tag, "job_id_from": outcome.source}
    _record(data, outcome.job_id, prep.cfg, env)
    _unlock()  # the next optsub's state holds this job now
    return int(outcome.returncode)


def _flags(argv: list[str]) -> tuple[bool, bool, bool]:
    """Whether the submitted arguments have ``--wait``, ``-Q`` and ``--parsable``."""
    from slurmopt.slurm.sbatch_args import parse_command_line

    opts = {o.option for comp in parse_command_line(argv).components for o in comp}
    return "wait" in opts, "quiet" in opts, "parsable" in opts


def _job_id(res: Any, tag: str | None, cfg: Any, settle: float, **flags: bool) -> Any:
    """The job id (sbatch's output, else the tag looked up once), exit status and message.

    After a slow failure (slurmctld busy or paused), the one lookup waits ``settle``
    seconds first: slurmctld may still be creating the job sbatch gave up on.
    """
    from slurmopt.optsub.jobid import resolve
    from slurmopt.slurm.sbatch_exec import find_tagged

    timeout = cfg.lookup_timeout_s if cfg is not None else 30.0

    def lookup(t: str) -> list[int]:
        time.sleep(settle)
        return find_tagged(t, _user(), timeout=timeout)

    return resolve(res, tag=tag, lookup=lookup, **flags)


def _record(data: dict[str, Any], job_id: int | None, cfg: Any, env: dict[str, str]) -> None:
    """Append the record to the spool; a failure here never changes the outcome.

    The spool is the one the controller ingests (:func:`slurmopt.optsub.spool.spool_dir`);
    when it cannot take the record, nothing is written elsewhere: one warning line.
    """
    from slurmopt.optsub import spool

    where = spool.spool_dir(cfg.spool_dir if cfg is not None else "", env)
    try:
        if env.get("SLURMOPT_OPTSUB_FAULT") == "spool":
            raise OSError("injected spool fault")
        spool.append(spool.make_record(job_id, data), where, env)
    except Exception as exc:  # the job is submitted; only the record is lost
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        job = f"job {job_id}" if job_id is not None else "the job"
        sys.stderr.write(
            f"optsub: warning: decision not recorded in spool {where}: {why}; {job} is submitted\n"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point.

    Two start-up and exit costs are skipped (issue 16, measured on the development
    VM): the cyclic garbage collector is off (optsub lives for one submission and
    makes little cyclic garbage; its collections during the submit path's imports
    cost 2-3 ms), and the process ends with :func:`exit_now` (the interpreter's
    teardown of the imported modules costs 5-6 ms).
    """
    gc.disable()
    exit_now(run(sys.argv[1:] if argv is None else argv, dict(os.environ)))


def exit_now(status: int) -> NoReturn:
    """Flush, run the exit handlers and end the process without the interpreter's teardown.

    What a normal exit does that matters here is done first: the ``atexit``
    handlers (``logging``'s flush, when something was logged) and flushing stdout
    and stderr. As CPython does, a failed flush of stdout makes the status 120.
    Every file optsub writes (the spool record) is closed before this point.
    """
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):  # None, closed, or the write failed
        status = 120
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    os._exit(status)
