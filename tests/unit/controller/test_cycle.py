"""One controller cycle against a fake backend (the real-Slurm version is in tests/slurm)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from slurmopt.controller import routing
from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.cycle import managed_jobs, run_cycle
from slurmopt.controller.journal import Journal, JournalError
from slurmopt.controller.lock import AlreadyRunning, CycleLock
from slurmopt.errors import JobNotPending, SlurmUnavailable
from slurmopt.history.controller_store import Store
from slurmopt.model import Job, JobRequest, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.versions import SlurmVersion
from slurmopt.trust import Claim, Refusal
from tests.unit.optimize.test_problem_builders import NOW, hetero_cluster, pending, running

V24 = SlurmVersion(24, 11, 5)


class FakeBackend:
    """Serves one snapshot and records (or fails) the moves asked of it."""

    def __init__(
        self,
        snap: Snapshot,
        *,
        vanished: Sequence[int] = (),
        down_after: int | None = None,
        version: SlurmVersion = V24,
    ) -> None:
        self.snap = snap
        self.moves: list[tuple[int, str, str | None]] = []
        self.vanished = set(vanished)
        self.down_after = down_after
        self._version = version
        self.read_back_fails = False

    def version(self) -> SlurmVersion:
        return self._version

    def snapshot(self) -> Snapshot:
        return self.snap

    def move(
        self,
        job_id: int,
        partition: str,
        *,
        gpu_type: str | None = None,
        current_request: JobRequest | None = None,
    ) -> None:
        if self.down_after is not None and len(self.moves) >= self.down_after:
            raise SlurmUnavailable("slurmctld is gone")
        if job_id in self.vanished:
            raise JobNotPending(job_id, "Job is no longer pending execution")
        self.moves.append((job_id, partition, gpu_type))

    def jobs(self, *, job_ids: Sequence[int] | None = None) -> tuple[Job, ...]:
        """The snapshot's jobs, where the moves put them (the read-back after applying)."""
        if self.read_back_fails:
            raise SlurmUnavailable("slurmctld is gone")
        where = {j: p for j, p, _ in self.moves}
        return tuple(
            dataclasses.replace(j, partitions=(where[j.job_id],)) if j.job_id in where else j
            for j in self.snap.jobs
            if job_ids is None or j.job_id in job_ids
        )


def congested(extra: Sequence[Job] = ()) -> Snapshot:
    """v100 full for 10 h, h100 idle; four managed jobs pending on v100 (allowed v100,h100)."""
    run = [
        running(100 + i, "v100", [f"v{i}"], gpus=4, gpu_type="v100", limit=36000) for i in (1, 2)
    ]
    jobs = [
        dataclasses.replace(
            pending(i, ["v100"], gpus=1, limit=4 * 3600),
            admin_comment=f"{routing_tag()}v100,h100",
        )
        for i in range(1, 5)
    ]
    return hetero_cluster([*run, *jobs, *extra])


def routing_tag() -> str:
    from slurmopt.controller.cycle import ALLOWED_TAG

    return ALLOWED_TAG


CFG = ControllerConfig(
    mode="enforce", budget_s=0.3, min_gain_s=60, min_gain_ratio=0.05, policy="auto"
)


def cycle(backend: FakeBackend, tmp_path: Path, cfg: ControllerConfig = CFG, **kw: object):
    return run_cycle(
        backend,  # type: ignore[arg-type]
        cfg,
        OptimizeConfig(),
        store=kw.pop("store", None),  # type: ignore[arg-type]
        lock_path=tmp_path / "lock",
        cache_path=tmp_path / "cache.json",
        routing_path=tmp_path / "routing.txt",
        **kw,  # type: ignore[arg-type]
    )


def test_enforce_moves_managed_jobs_to_the_idle_fast_partition(tmp_path: Path) -> None:
    backend = FakeBackend(congested())
    report = cycle(backend, tmp_path)
    assert report.managed == 4
    assert {(j, p) for j, p, _ in backend.moves} == {(i, "h100") for i in range(1, 5)}
    assert all(j.outcome == "applied" and j.gain_s > 0 for j in report.jobs)
    assert report.applied == 4 and report.error is None
    assert report.objective_after is not None and report.objective_before is not None
    assert report.objective_after < report.objective_before
    # outputs for optsub and the plugin
    assert (tmp_path / "cache.json").exists()
    _, routes = routing.parse((tmp_path / "routing.txt").read_text())
    assert routes["gpu"][0] == "h100"
    assert routes["cpu"] == ["cpu"]
    assert "gpus h100 h100\n" in (tmp_path / "routing.txt").read_text()


@pytest.mark.parametrize("mode", ["observe", "advise"])
def test_observe_and_advise_change_nothing(tmp_path: Path, mode: str) -> None:
    backend = FakeBackend(congested())
    report = cycle(backend, tmp_path, dataclasses.replace(CFG, mode=mode))
    assert backend.moves == []
    assert report.accepted == 4 and report.total_gain_s > 0
    assert {j.outcome for j in report.jobs} == {"observed" if mode == "observe" else "advised"}


def test_dry_run_and_kill_switch_change_nothing(tmp_path: Path) -> None:
    backend = FakeBackend(congested())
    assert cycle(backend, tmp_path, dry_run=True).applied == 0
    stop = tmp_path / "STOP"
    stop.touch()
    report = cycle(backend, tmp_path, dataclasses.replace(CFG, kill_switch=str(stop)))
    assert report.kill_switch and backend.moves == []
    assert all("kill switch" in j.reason for j in report.jobs)


def test_unmanaged_and_held_jobs_are_never_touched(tmp_path: Path) -> None:
    plain = pending(7, ["v100"], gpus=1, limit=4 * 3600)
    held = dataclasses.replace(
        pending(8, ["v100"], gpus=1), held=True, admin_comment=f"{routing_tag()}v100,h100"
    )
    backend = FakeBackend(congested([plain, held]))
    cycle(backend, tmp_path)
    moved = {j for j, _, _ in backend.moves}
    assert 7 not in moved and 8 not in moved
    assert moved == {1, 2, 3, 4}


def test_moves_stay_within_the_allowed_set(tmp_path: Path) -> None:
    snap = congested()
    only_v100 = [
        dataclasses.replace(j, admin_comment=f"{routing_tag()}v100,a100") if j.pending else j
        for j in snap.jobs
    ]
    backend = FakeBackend(dataclasses.replace(snap, jobs=tuple(only_v100)))
    cycle(backend, tmp_path)
    assert backend.moves and all(p in ("v100", "a100") for _, p, _ in backend.moves)


def test_vanished_job_is_recorded_not_an_error(tmp_path: Path) -> None:
    backend = FakeBackend(congested(), vanished=[2])
    report = cycle(backend, tmp_path)
    outcome = {j.job_id: j.outcome for j in report.jobs}
    assert outcome[2] == "not-pending"
    assert report.error is None and report.applied == 3


def test_slurmctld_lost_mid_apply_stops_cleanly(tmp_path: Path) -> None:
    backend = FakeBackend(congested(), down_after=1)
    report = cycle(backend, tmp_path)
    assert len(backend.moves) == 1
    outcomes = {j.job_id: j.outcome for j in report.jobs}
    assert sorted(outcomes.values()) == ["applied", "skipped", "skipped", "unconfirmed"]
    assert report.error and "stopped answering" in report.error
    assert report.unconfirmed == 1
    journal = Journal.beside(tmp_path / "lock")
    kept = journal.load()
    assert kept is not None and kept[0].started_at == report.started_at


def test_next_cycle_reconciles_an_unconfirmed_move_from_slurm(tmp_path: Path) -> None:
    """The move slurmctld received while not answering is found done and recorded as applied."""
    from slurmopt.history import db

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    db.upgrade(db.make_engine(url))
    store = Store(url, tmp_path / "spool")
    backend = FakeBackend(congested(), down_after=1)
    first = cycle(backend, tmp_path, store=store, clock=lambda: NOW)
    lost = next(j.job_id for j in first.jobs if j.outcome == "unconfirmed")
    rows = {r["job_id"]: r for r in db.rows(store.engine, "decisions")}
    assert rows[lost]["outcome"] == "unconfirmed"
    # slurmctld resumes and acts on the request it had received; the jobs now look moved
    moved = {j.job_id for j in first.jobs if j.outcome == "applied"} | {lost}
    backend.snap = dataclasses.replace(
        backend.snap,
        taken_at=NOW + 60,
        jobs=tuple(
            dataclasses.replace(j, partitions=("h100",)) if j.job_id in moved else j
            for j in backend.snap.jobs
        ),
    )
    backend.down_after = None
    second = cycle(backend, tmp_path, store=store, clock=lambda: NOW + 60)
    assert second.reconciled == 1  # the unconfirmed move (the two never sent are settled)
    rows = {
        (r["job_id"], r["decided_at"]): r
        for r in db.rows(store.engine, "decisions")
        if r["decided_at"] == NOW
    }
    assert rows[(lost, NOW)]["outcome"] == "applied" and rows[(lost, NOW)]["applied"]
    assert "found moved by the next cycle" in rows[(lost, NOW)]["reason"]
    skipped = [r for r in rows.values() if r["outcome"] == "skipped"]
    assert len(skipped) == 2 and all("not sent" in r["reason"] for r in skipped)
    assert store.moves_so_far(backend.snap.cluster_name)[lost] == 1
    assert not Journal.beside(tmp_path / "lock").path.exists()


def test_a_cycle_that_cannot_record_its_intent_applies_nothing(tmp_path: Path) -> None:
    backend = FakeBackend(congested())
    journal = Journal(tmp_path / "no-such-dir" / "sub" / "j")
    (tmp_path / "no-such-dir").write_text("a file, not a directory")
    with pytest.raises(JournalError):
        cycle(backend, tmp_path, journal=journal)
    assert backend.moves == []


def test_moves_not_read_back_stay_unconfirmed(tmp_path: Path) -> None:
    backend = FakeBackend(congested())
    backend.read_back_fails = True
    report = cycle(backend, tmp_path)
    assert len(backend.moves) == 4
    assert {j.outcome for j in report.jobs} == {"unconfirmed"}
    assert Journal.beside(tmp_path / "lock").path.exists()


def test_database_locked_at_record_keeps_the_journal(tmp_path: Path) -> None:
    """Moves applied, the record fails: the journal keeps it, the next cycle writes it."""
    import sqlite3

    from slurmopt.history import db

    path = tmp_path / "h.sqlite"
    url = f"sqlite:///{path}"
    db.upgrade(db.make_engine(url))
    store = Store(url, tmp_path / "spool", busy_timeout_s=0.1, attempts=2)
    backend = FakeBackend(congested())
    holder = sqlite3.connect(path, isolation_level=None)
    real_move = backend.move

    def move_then_lock(*a: object, **kw: object) -> None:
        if not holder.in_transaction:
            holder.execute("BEGIN EXCLUSIVE")
        real_move(*a, **kw)  # type: ignore[arg-type]

    backend.move = move_then_lock  # type: ignore[method-assign]
    report = cycle(backend, tmp_path, store=store, clock=lambda: NOW)
    assert report.applied == 4 and report.record_error
    assert "locked" in report.record_error
    assert (tmp_path / "routing.txt").exists()  # outputs written all the same
    holder.execute("ROLLBACK")
    assert db.rows(store.engine, "decisions") == []
    backend.move = real_move  # type: ignore[method-assign]
    backend.snap = dataclasses.replace(
        backend.snap,
        taken_at=NOW + 60,
        jobs=tuple(
            dataclasses.replace(j, partitions=("h100",)) if 1 <= j.job_id <= 4 else j
            for j in backend.snap.jobs
        ),
    )
    cycle(backend, tmp_path, store=store, clock=lambda: NOW + 60)
    first = [r for r in db.rows(store.engine, "decisions") if r["decided_at"] == NOW]
    assert sorted(r["job_id"] for r in first) == [1, 2, 3, 4]
    assert all(r["applied"] for r in first)
    assert store.moves_so_far(backend.snap.cluster_name) == {i: 1 for i in range(1, 5)}
    assert not Journal.beside(tmp_path / "lock").path.exists()


def test_an_unreadable_journal_is_moved_aside(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path / "lock")
    journal.path.write_bytes(b"\xff\x00 not json")
    report = cycle(FakeBackend(congested()), tmp_path)
    assert report.applied == 4
    assert journal.path.with_name(journal.path.name + ".unreadable").exists()


def test_cycle_cap(tmp_path: Path) -> None:
    backend = FakeBackend(congested())
    report = cycle(backend, tmp_path, dataclasses.replace(CFG, max_moves_per_cycle=2))
    assert len(backend.moves) == 2
    assert sum("per cycle" in j.reason for j in report.jobs) == 2


def test_slurm_22_05_never_retypes(tmp_path: Path) -> None:
    snap = congested()
    typed = tuple(
        dataclasses.replace(j, request=dataclasses.replace(j.request, gpu_type="v100"))
        if j.pending
        else j
        for j in snap.jobs
    )
    backend = FakeBackend(dataclasses.replace(snap, jobs=typed), version=SlurmVersion(22, 5, 8))
    cycle(backend, tmp_path)
    assert all(p == "v100" for _, p, _ in backend.moves)


def test_a_second_controller_does_nothing(tmp_path: Path) -> None:
    backend = FakeBackend(congested())
    with CycleLock(tmp_path / "lock"), pytest.raises(AlreadyRunning):
        cycle(backend, tmp_path)
    assert backend.moves == []


def test_failed_read_skips_the_cycle(tmp_path: Path) -> None:
    class Broken(FakeBackend):
        def snapshot(self) -> Snapshot:
            raise SlurmUnavailable("cannot reach slurmctld")

    backend = Broken(congested())
    with pytest.raises(SlurmUnavailable):
        cycle(backend, tmp_path)
    assert backend.moves == [] and not (tmp_path / "routing.txt").exists()


def test_site_rules_opt_in() -> None:
    snap = hetero_cluster(
        [
            pending(1, ["v100", "h100"], account="ml"),
            dataclasses.replace(pending(2, ["v100"]), comment="x slurmopt:auto"),
            pending(3, ["v100"]),
        ]
    )
    cfg = ControllerConfig(opt_in_accounts=("ml",))
    got = managed_jobs(snap, cfg, {})
    assert got == {1: (("v100", "h100"), True), 2: (("v100",), True)}
    assert set(managed_jobs(snap, dataclasses.replace(cfg, manage_all=True), {})) == {1, 2, 3}
    claim = Claim(3, "alice", ("a100",), pinned=False, at=NOW)
    channels: dict[int, str] = {}
    assert managed_jobs(snap, ControllerConfig(), {3: [claim]}, channels=channels) == {
        2: (("v100",), True),
        3: (("a100", "v100"), False),  # always contains where the owner submitted
    }
    assert channels == {2: "site:comment", 3: "optsub:alice"}
    # the same record written by another user: refused, the job is not managed
    refusals: list[Refusal] = []
    forged = claim._replace(owner="mallory")  # Claim is a NamedTuple
    got = managed_jobs(snap, ControllerConfig(), {3: [forged]}, refusals=refusals)
    assert 3 not in got
    assert [(r.who, r.why) for r in refusals] == [
        ("mallory", "record written by mallory for a job of alice")
    ]
    # a forged newer record does not displace the owner's own
    got = managed_jobs(snap, ControllerConfig(), {3: [claim, forged._replace(at=NOW + 9)]})
    assert got[3] == (("a100", "v100"), False)


def test_history_records_decisions_and_limits_moves_per_job(tmp_path: Path) -> None:
    from slurmopt.history import db

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    db.upgrade(db.make_engine(url))
    store = Store(url, tmp_path / "spool")
    cfg = dataclasses.replace(CFG, max_moves_per_job=1)
    backend = FakeBackend(congested())
    report = cycle(backend, tmp_path, cfg, store=store, clock=lambda: NOW)
    assert report.applied == 4
    assert store.moves_so_far(backend.snap.cluster_name) == {i: 1 for i in range(1, 5)}
    # the same jobs, still pending where they were, a minute later: the limit holds
    backend.snap = dataclasses.replace(backend.snap, taken_at=NOW + 60)
    backend.moves.clear()
    again = cycle(backend, tmp_path, cfg, store=store, clock=lambda: NOW + 60)
    assert backend.moves == []
    assert all("already moved 1 times" in j.reason for j in again.jobs)
    rows = db.rows(store.engine, "decisions")
    assert len(rows) == 8
    assert {r["outcome"] for r in rows} == {"applied", "rejected"}


def test_nice_band_orders_kept_jobs_shortest_first(tmp_path: Path) -> None:
    # three managed jobs that may only stay on v100: shortest gets the low nice
    limits = {1: 3 * 3600, 2: 3600, 3: 2 * 3600}
    snap = hetero_cluster(
        [
            dataclasses.replace(
                pending(i, ["v100"], gpus=1, limit=lim), admin_comment=f"{routing_tag()}v100"
            )
            for i, lim in limits.items()
        ]
        + [
            running(100 + i, "v100", [f"v{i}"], gpus=4, gpu_type="v100", limit=36000)
            for i in (1, 2)
        ]
    )

    class Nice(FakeBackend):
        def __init__(self, snap: Snapshot) -> None:
            super().__init__(snap)
            self.nice: dict[int, int] = {}
            self.prio: dict[int, int] = {}

        def set_nice(self, job_id: int, nice: int) -> None:
            self.nice[job_id] = nice

        def set_priority(self, job_id: int, priority: int) -> None:
            self.prio[job_id] = priority

    backend = Nice(snap)
    report = cycle(backend, tmp_path, dataclasses.replace(CFG, nice_band=(0, 100)))
    assert backend.moves == []
    assert backend.nice == {3: 50, 1: 100}  # job 2 (shortest) already has nice 0
    assert {j.change for j in report.jobs} == {"nice"}
    # observe mode computes the same and applies nothing
    quiet = Nice(snap)
    cycle(quiet, tmp_path, dataclasses.replace(CFG, mode="observe", nice_band=(0, 100)))
    assert quiet.nice == {}
    # absolute priority: shortest gets the top priority (pinned; only when enabled)
    backend = Nice(snap)
    cycle(backend, tmp_path, dataclasses.replace(CFG, absolute_priority=True))
    assert backend.prio == {3: 999, 1: 998}  # job 2 already has the top priority, 1000
    assert backend.nice == {}


def test_history_predictions_replace_time_limits(tmp_path: Path) -> None:
    from slurmopt.history import db
    from slurmopt.history.ingest import observe

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    # history: alice's "train" job (4 h limit) ran 600 s on a v100
    past = dataclasses.replace(
        running(50, "v100", ["v1"], gpus=1, gpu_type="v100", limit=4 * 3600, started=NOW - 4000),
        name="train",
        user="alice",
    )
    with db.transaction(engine) as s:
        observe(s, dataclasses.replace(hetero_cluster([past]), taken_at=NOW - 3500))
    with db.transaction(engine) as s:
        observe(s, dataclasses.replace(hetero_cluster([]), taken_at=NOW - 3400))
    now_jobs = [
        dataclasses.replace(pending(1, ["v100"], limit=4 * 3600), name="train"),
        dataclasses.replace(pending(2, ["h100"], limit=4 * 3600), name="train"),
    ]
    snap = hetero_cluster(now_jobs)
    store = Store(url, tmp_path / "spool", predictions=True)
    cfg, runtimes = store.tune(snap, OptimizeConfig())
    assert runtimes[1] == pytest.approx(600, rel=0.01)  # at v100 speed (1.0)
    assert runtimes[2] == pytest.approx(600 / 3, rel=0.01)  # at h100 speed (3.0)
    assert cfg == OptimizeConfig()
    off = Store(url, tmp_path / "spool")
    assert off.tune(snap, OptimizeConfig())[1] == {}
    # The cycle hands the predictions to optsub through the state cache (a short queue
    # is written as it is; a long one as a digest, see tests/unit/optsub/test_fresh.py).
    from slurmopt.statecache import read_cache

    cycle(FakeBackend(snap), tmp_path, store=store, clock=lambda: NOW)
    _, cached = read_cache(tmp_path / "cache.json", max_age_s=60, now=NOW)
    assert cached == pytest.approx(runtimes, rel=1e-3)


def test_the_learned_share_of_the_limit_reaches_the_state_cache(tmp_path: Path) -> None:
    """25 jobs seen running and then gone (600 s of a 4 h limit): the controller learns
    that jobs use 4 % of their limits (v100 and site-wide), ranks with it and hands it to
    optsub through the state cache; with too little history it learns nothing."""
    from slurmopt.history import db
    from slurmopt.history.ingest import observe
    from slurmopt.statecache import read_state

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = Store(url, tmp_path / "spool", predictions=True)
    past = [
        running(50 + i, "v100", ["v1"], gpus=0, limit=4 * 3600, started=NOW - 4000)
        for i in range(25)
    ]
    with db.transaction(engine) as s:
        observe(s, dataclasses.replace(hetero_cluster(past[:19]), taken_at=NOW - 3500))
    with db.transaction(engine) as s:
        observe(s, dataclasses.replace(hetero_cluster([]), taken_at=NOW - 3400))
    assert store.tune(hetero_cluster(), OptimizeConfig())[0].limit_ratio == {}  # 19 jobs
    newcomer = dataclasses.replace(
        running(91, "v100", ["v1"], gpus=1, gpu_type="v100", limit=3600, started=NOW - 60),
        user="newcomer",
        name="first",
    )
    assert 91 in store.tune(hetero_cluster([newcomer]), OptimizeConfig())[1]  # no share yet
    with db.transaction(engine) as s:
        observe(s, dataclasses.replace(hetero_cluster(past[19:]), taken_at=NOW - 3300))
    with db.transaction(engine) as s:
        observe(s, dataclasses.replace(hetero_cluster([]), taken_at=NOW - 3200))
    cfg, _ = store.tune(hetero_cluster(), OptimizeConfig(limit_ratio={"a100": 0.5}))
    share = cfg.limit_ratio["v100"]
    assert 600 / 14400 <= share <= 1000 / 14400  # observed at 100 s steps
    assert cfg.limit_ratio == {"a100": 0.5, "v100": share, "*": share}  # the prior kept
    # a running job of a new user has no history: its "prediction" would only be its limit,
    # so it is left to the learned share (before any share is learned, it is kept)
    new = dataclasses.replace(
        running(90, "v100", ["v1"], gpus=1, gpu_type="v100", limit=3600, started=NOW - 60),
        user="newcomer",
        name="first",
    )
    assert 90 not in store.tune(hetero_cluster([new]), OptimizeConfig())[1]
    cycle(FakeBackend(hetero_cluster()), tmp_path, store=store, clock=lambda: NOW)
    got: dict[str, float] = {}
    read_state(tmp_path / "cache.json", max_age_s=60, now=NOW, limit_ratio=got)
    assert got == {"v100": share, "*": share}


def test_a_journal_of_another_cluster_is_set_aside(tmp_path: Path) -> None:
    from slurmopt.controller.report import CycleReport

    journal = Journal.beside(tmp_path / "lock")
    journal.write(CycleReport(started_at=NOW, mode="enforce", dry_run=False), "elsewhere")
    report = cycle(FakeBackend(congested()), tmp_path)
    assert report.reconciled == 0 and report.applied == 4
    assert journal.path.with_name(journal.path.name + ".cluster-elsewhere").exists()


def test_an_unusable_lock_path_is_one_config_error(tmp_path: Path) -> None:
    from slurmopt.errors import ConfigError

    (tmp_path / "file").write_text("not a directory")
    backend = FakeBackend(congested())
    with pytest.raises(ConfigError, match="cannot open the cycle lock"):
        run_cycle(
            backend,  # type: ignore[arg-type]
            CFG,
            OptimizeConfig(),
            store=None,
            lock_path=tmp_path / "file" / "lock",
            cache_path=None,
            routing_path=None,
        )
    assert backend.moves == []


def test_reconcile_settles_each_unsettled_change_from_slurm() -> None:
    """A controller killed mid-apply leaves `intended` entries: each settled from Slurm."""
    from slurmopt.controller.apply import reconcile
    from slurmopt.controller.report import JobOutcome

    def entry(job_id: int, outcome: str, change: str = "move") -> JobOutcome:
        return JobOutcome(
            job_id, ("v100",), "h100", None, 0, 10, 0, 5, 5.0, True, "gain", outcome, change
        )

    outcomes = [
        entry(1, "intended"),  # found in h100: moved by the controller
        entry(2, "unconfirmed"),  # still in v100: not moved
        entry(3, "intended"),  # in a100: someone else moved it
        entry(4, "unconfirmed"),  # gone from Slurm
        entry(5, "applied"),  # settled already: untouched
        entry(6, "intended", change="nice"),
    ]
    jobs = {
        1: pending(1, ["h100"], gpus=1),
        2: pending(2, ["v100"], gpus=1),
        3: pending(3, ["a100"], gpus=1),
        5: pending(5, ["h100"], gpus=1),
        6: pending(6, ["v100"], gpus=1),
    }
    assert reconcile(outcomes, jobs, started_at=NOW) == 5
    got = {o.job_id: o.outcome for o in outcomes}
    assert got == {
        1: "applied",
        2: "skipped",
        3: "moved-elsewhere",
        4: "gone",
        5: "applied",
        6: "unconfirmed",
    }
    assert "moved by slurmopt controller" in outcomes[0].reason
    assert "moved by someone else: in a100" in outcomes[2].reason
    assert outcomes[4].reason == "gain"
