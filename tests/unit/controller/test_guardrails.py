"""Guardrails: every rule, the per-cycle cap, and the lock and routing file helpers."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

import pytest

from slurmopt.controller import routing
from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.guardrails import Proposal, judge
from slurmopt.controller.lock import AlreadyRunning, CycleLock
from slurmopt.fsutil import write_atomic
from slurmopt.model import Job, JobRequest, JobState

NOW = 1_000_000.0


def job(job_id: int = 1, **kw: object) -> Job:
    base: dict[str, object] = {
        "job_id": job_id,
        "name": "train",
        "user": "alice",
        "state": JobState.PENDING,
        "partitions": ("a100", "h100"),
        "request": JobRequest(gpus_per_node=1, gpu_type="a100"),
    }
    base.update(kw)
    return Job(**base)  # type: ignore[arg-type]


def proposal(job_id: int = 1, gain: float = 3600.0, **kw: object) -> Proposal:
    base: dict[str, object] = {
        "job": job(job_id),
        "allowed": ("a100", "h100"),
        "current_start": NOW + 7200,
        "current_end": NOW + 7200 + 3600 + gain,
        "target": "h100",
        "target_gpu_type": "h100",
        "target_start": NOW + 7200,
        "target_end": NOW + 7200 + 3600,
    }
    base.update(kw)
    return Proposal(**base)  # type: ignore[arg-type]


CFG = ControllerConfig(min_gain_s=300, min_gain_ratio=0.1, imminent_s=60, max_moves_per_cycle=2)


def one(p: Proposal, cfg: ControllerConfig = CFG, kill: bool = False) -> tuple[bool, str]:
    (v,) = judge([p], cfg, now=NOW, kill_switch=kill)
    return v.accepted, v.reason


def test_accepts_a_worthwhile_move() -> None:
    ok, reason = one(proposal())
    assert ok and "3600 s earlier" in reason


@pytest.mark.parametrize(
    ("p", "kill", "needle"),
    [
        (proposal(), True, "kill switch"),
        (proposal(job=job(state=JobState.RUNNING)), False, "not pending"),
        (proposal(job=job(held=True)), False, "held"),
        (proposal(target="v100"), False, "outside the allowed set"),
        (proposal(current_start=NOW + 30), False, "start within"),
        (proposal(moves_so_far=3), False, "already moved 3 times"),
        (proposal(gain=100), False, "below the minimum"),
        (
            proposal(current_end=NOW + 100_000, target_end=NOW + 100_000 - 400),
            False,
            "% of the remaining",
        ),
        (
            proposal(
                job=job(partitions=("h100",), request=JobRequest(gpus_per_node=1)),
                target_gpu_type=None,
            ),
            False,
            "already where",
        ),
    ],
)
def test_rejections(p: Proposal, kill: bool, needle: str) -> None:
    ok, reason = one(p, kill=kill)
    assert not ok
    assert needle in reason


def test_cycle_cap_keeps_largest_gains() -> None:
    ps = [proposal(i, gain=2000 * i) for i in range(1, 5)]
    verdicts = judge(ps, CFG, now=NOW, kill_switch=False)
    accepted = [v.job_id for v in verdicts if v.accepted]
    assert accepted == [4, 3]
    capped = [v for v in verdicts if not v.accepted]
    assert {v.job_id for v in capped} == {1, 2}
    assert all("per cycle" in v.reason for v in capped)


def test_zero_cap_changes_nothing() -> None:
    cfg = dataclasses.replace(CFG, max_moves_per_cycle=0)
    assert not any(v.accepted for v in judge([proposal()], cfg, now=NOW, kill_switch=False))


def _try_lock(path: str, q: multiprocessing.Queue[str]) -> None:
    try:
        with CycleLock(path):
            q.put("got it")
    except AlreadyRunning as exc:
        q.put(str(exc))


def test_lock_excludes_a_second_process(tmp_path: Path) -> None:
    path = str(tmp_path / "c.lock")
    q: multiprocessing.Queue[str] = multiprocessing.Queue()
    with CycleLock(path):
        proc = multiprocessing.Process(target=_try_lock, args=(path, q))
        proc.start()
        proc.join(10)
        assert "another slurmopt controller is running" in q.get(timeout=5)
    proc = multiprocessing.Process(target=_try_lock, args=(path, q))
    proc.start()
    proc.join(10)
    assert q.get(timeout=5) == "got it"


def test_routing_round_trip(tmp_path: Path) -> None:
    text = routing.render({"gpu": ["h100", "a100"], "cpu": ["cpu"], "gpu:a100": []}, 42)
    gen, routes = routing.parse(text)
    assert gen == 42
    assert routes == {"cpu": ["cpu"], "gpu": ["h100", "a100"]}
    target = tmp_path / "sub" / "routing.txt"
    write_atomic(target, text)
    assert target.read_text() == text
    assert [p.name for p in target.parent.iterdir()] == ["routing.txt"]


@pytest.mark.parametrize("bad", [{"gpu x": ["a"]}, {"gpu": ["a,b"]}, {"gpu": ["a b"]}])
def test_routing_rejects_names_lua_cannot_read(bad: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError):
        routing.render(bad, 1)


def test_routing_gpus_records_round_trip() -> None:
    text = routing.render(
        {"cpu": ["cpu"]}, 7, {"cpu": [], "h100": ["h100"], "gpu": ["h100", "a100"]}
    )
    assert "gpus cpu -\n" in text
    assert "gpus gpu a100,h100\n" in text
    assert routing.parse(text) == (7, {"cpu": ["cpu"]})
    with pytest.raises(ValueError):
        routing.render({}, 1, {"a b": ["h100"]})
