"""scripts/testbed: the daemons we start (pid files, /proc checks, stopping) and readiness.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path

from testbed_common import MARKER, Paths, TestbedError, run, say, slurm_env

from slurmopt.clusterspec import ClusterSpec

READY_STATES = {"IDLE", "MIXED", "ALLOCATED", "COMPLETING"}
NOISE = re.compile(
    # harmless on every start of a Debian testbed; they would hide the real cause
    r"pmix|MPI: Cannot create context|plugin name for mpi/|state file|Trying backup state"
)
BAD_FLAGS = {"NOT_RESPONDING", "POWERED_DOWN", "POWERING_DOWN", "POWERING_UP", "FAIL"}


def proc_argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def proc_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def daemon_pid(paths: Paths, daemon: str) -> int | None:
    """The pid of our running ``daemon`` (checked against its command line), else None."""
    try:
        pid = int(paths.pid_file(daemon).read_text().strip())
    except (OSError, ValueError):
        return None
    argv = proc_argv(pid)
    if not argv or not proc_alive(pid):
        return None
    prog = Path(argv[0]).name
    if daemon == "munged":
        ok = prog == "munged" and f"--socket={paths.munge_sock}" in argv
    elif daemon == "slurmctld":
        ok = prog == "slurmctld" and str(paths.conf) in argv
    elif daemon == "mariadbd":
        ok = prog == "mariadbd" and f"--datadir={paths.mysql / 'data'}" in argv
    elif daemon == "slurmdbd":
        # slurmdbd has no -f: it finds etc/slurmdbd.conf through SLURM_CONF
        ok = prog == "slurmdbd" and _environ_has(pid, f"SLURM_CONF={paths.conf}")
    else:
        node = daemon.removeprefix("slurmd-")
        ok = prog == "slurmd" and str(paths.conf) in argv and node in argv
    return pid if ok else None


def _environ_has(pid: int, entry: str) -> bool:
    try:
        return entry.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def our_daemons(paths: Paths) -> dict[str, int]:
    """Every daemon of ours that runs now, by pid-file name."""
    found: dict[str, int] = {}
    if paths.pids.is_dir():
        for f in sorted(paths.pids.glob("*.pid")):
            pid = daemon_pid(paths, f.stem)
            if pid is not None:
                found[f.stem] = pid
    return found


def spawn(
    paths: Paths, daemon: str, argv: list[str], user: str | None = None, mark: bool = True
) -> int:
    """Start a daemon in the foreground of its own session; write its pid file.

    ``mark`` puts :data:`MARKER` into its environment, so that the processes it
    starts (slurmstepd) can be found and stopped by ``down``.
    """
    paths.pids.mkdir(parents=True, exist_ok=True)
    paths.log.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SLURM_CONF=str(paths.conf))
    env.pop(MARKER, None)
    if mark:
        env[MARKER] = str(paths.root)
    out = (paths.log / f"{daemon}.out").open("ab")
    gid = pwd.getpwnam(user).pw_gid if user else None
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd="/",
        start_new_session=True,
        close_fds=True,
        user=user,
        group=gid,
        extra_groups=[] if user else None,
    )
    out.close()
    pid: int = proc.pid
    paths.pid_file(daemon).write_text(f"{pid}\n")
    return pid


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if proc_alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if proc_alive(p)]
    return left


def stop_pids(pids: list[int], timeout: float = 20) -> list[int]:
    """SIGTERM, wait, then SIGKILL; returns the pids still alive after all that."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return wait_gone(left, 10)


def marked_processes(root: Path) -> list[int]:
    """Processes that inherited our marker (slurmstepd) and all their descendants."""
    me = {os.getpid(), os.getppid()}
    needle = f"{MARKER}={root}".encode()
    children: dict[int, list[int]] = {}
    marked: list[int] = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[-1].split()[1])
            children.setdefault(ppid, []).append(pid)
            if pid not in me and needle in (d / "environ").read_bytes().split(b"\0"):
                marked.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    out: list[int] = []
    todo = list(marked)
    while todo:
        pid = todo.pop()
        if pid in out or pid in me:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def ctld_up(paths: Paths) -> bool:
    try:
        res = run(["scontrol", "ping"], timeout=10, env=slurm_env(paths))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and "UP" in res.stdout


def node_states(paths: Paths) -> dict[str, tuple[str, set[str], str]]:
    """name -> (base state, flags, reason) from ``scontrol -o show nodes``."""
    res = run(["scontrol", "-o", "show", "nodes"], timeout=20, env=slurm_env(paths))
    out: dict[str, tuple[str, set[str], str]] = {}
    if res.returncode != 0:
        return out
    for line in res.stdout.splitlines():
        name = re.search(r"NodeName=(\S+)", line)
        state = re.search(r"\bState=(\S+)", line)
        reason = re.search(r"\bReason=(.*?)(?: \w+=|$)", line)
        if name and state:
            base, *flags = state.group(1).split("+")
            out[name.group(1)] = (base, set(flags), reason.group(1) if reason else "")
    return out


def log_excerpt(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"  ({path} unreadable)"
    hits = [
        ln
        for ln in text
        if re.search(r"error|fatal|failed|invalid|unable", ln, re.I) and not NOISE.search(ln)
    ]
    chosen = hits[-lines:] + ([f"(last line) {text[-1]}"] if text else [])
    return "\n".join(f"  {ln}" for ln in chosen) or "  (empty)"


def wait_ready(paths: Paths, spec: ClusterSpec, timeout: float) -> None:
    """Wait until slurmctld answers and every node of the spec responds (idle, mixed,
    allocated or completing; drained nodes count, with a note).

    Raises:
        TestbedError: after ``timeout`` seconds, with the node states and the
            slurmctld / slurmd log lines that explain them.
    """
    deadline = time.monotonic() + timeout
    states: dict[str, tuple[str, set[str], str]] = {}
    first = True
    while first or time.monotonic() < deadline:
        first = False
        if ctld_up(paths):
            states = node_states(paths)
            bad = [
                n.name
                for n in spec.nodes
                if n.name not in states
                or states[n.name][0] not in READY_STATES
                or states[n.name][1] & BAD_FLAGS
            ]
            if not bad:
                drained = [n for n, s in states.items() if s[1] & {"DRAIN", "DRAINING", "DRAINED"}]
                if drained:
                    say(f"note: drained nodes (left as they are): {', '.join(sorted(drained))}")
                return
        time.sleep(1)
    lines = [f"not every node came up within {timeout:.0f}s"]
    if not ctld_up(paths):
        lines.append("slurmctld does not answer 'scontrol ping'; its log:")
        lines.append(log_excerpt(paths.log / "slurmctld.log"))
        lines.append(log_excerpt(paths.log / "slurmctld.out", 5))
    else:
        bad_nodes = [
            n.name
            for n in spec.nodes
            if states.get(n.name, ("?", set(), ""))[0] not in READY_STATES
            or states.get(n.name, ("", set(), ""))[1] & BAD_FLAGS
        ]
        for name in bad_nodes[:6]:
            base, flags, reason = states.get(name, ("MISSING", set(), ""))
            alive = daemon_pid(paths, f"slurmd-{name}") is not None
            lines.append(
                f"node {name}: {'+'.join([base, *sorted(flags)])} reason={reason!r} "
                f"slurmd {'running' if alive else 'NOT running'}; its log:"
            )
            lines.append(log_excerpt(paths.log / f"slurmd-{name}.log", 6))
            lines.append(log_excerpt(paths.log / f"slurmd-{name}.out", 3))
        lines.append("slurmctld log:")
        lines.append(log_excerpt(paths.log / "slurmctld.log", 8))
    raise TestbedError("\n".join(lines))


def probe_json(paths: Paths) -> dict[str, bool]:
    env = slurm_env(paths)
    out = {}
    for key, argv in {
        "sinfo": ["sinfo", "--json"],
        "squeue": ["squeue", "--json"],
        "scontrol": ["scontrol", "show", "nodes", "--json"],
    }.items():
        try:
            res = run(argv, timeout=20, env=env)
            ok = res.returncode == 0 and res.stdout.lstrip().startswith("{")
        except subprocess.TimeoutExpired:
            ok = False
        out[key] = ok
    return out
