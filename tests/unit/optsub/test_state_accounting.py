"""A cache too old for the cluster state still gives a live read its QOS limits and
associations (sacctmgr costs ~0.25 s; they change rarely)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slurmopt.model import Association, QosLimits, Snapshot
from slurmopt.optsub.config import OptsubConfig
from slurmopt.optsub.state import ACCOUNTING_MAX_AGE_S, get_state
from slurmopt.slurm import backend as backend_mod
from slurmopt.statecache import write_cache
from tests.unit.optimize.test_problem_builders import NOW, hetero_cluster

QOS = (QosLimits("lim", max_wall_s=600),)
ASSOC = (Association("alice", "ml", "ml", "high", ("high",)),)


class FakeBackend:
    def __init__(self) -> None:
        self.accounting_hint: tuple[object, object] | None = None

    def snapshot(self) -> Snapshot:
        snap = hetero_cluster()
        if self.accounting_hint is None:
            return snap
        qos, assoc = self.accounting_hint
        return dataclasses.replace(snap, qos=qos, associations=assoc)  # type: ignore[arg-type]


@pytest.mark.parametrize(("age", "reused"), [(600, True), (ACCOUNTING_MAX_AGE_S + 60, False)])
def test_live_read_takes_the_accounting_of_a_stale_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age: float, reused: bool
) -> None:
    cache = tmp_path / "cache.json"
    old = dataclasses.replace(
        hetero_cluster(), taken_at=int(NOW - age), qos=QOS, associations=ASSOC
    )
    write_cache(old, cache, now=NOW - age)
    fake = FakeBackend()
    monkeypatch.setattr(backend_mod, "get_backend", lambda: fake)
    cfg = OptsubConfig(cache_path=str(cache), cache_max_age_s=60, live_refresh=False)
    snap, source, _ = get_state(cfg, now=NOW, env={})
    assert (snap.qos, snap.associations) == ((QOS, ASSOC) if reused else ((), ()))
    assert source.startswith("live") and ("from the cache" in source) == reused
