"""optsub counts only attributable recent submissions of the spool (docs/security.md).

Files owned by another user are made with ``chown`` (root; the real-user
version of these attacks is tests/slurm/test_security.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from slurmopt.model import JobRequest
from slurmopt.optsub import spool
from slurmopt.optsub.state import OVERLAY_MAX_PER_USER, recent_submissions
from slurmopt.trust import me
from tests.unit.optimize.test_problem_builders import NOW

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown files")

OTHER = 54321  # a uid without a passwd entry: its name is "54321"
ME = me()


def rec(job_id: int, user: str, partition: str = "h100", at: float = NOW + 1) -> dict[str, object]:
    req = dataclasses.asdict(JobRequest(gpus_per_node=8, gpu_type="h100", time_limit_s=3600))
    r = spool.make_record(job_id, {"partition": partition, "request": req, "sbatch_rc": 0}, now=at)
    r["user"] = user
    return r


def write(path: Path, recs: list[dict[str, object]], uid: int) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    os.chown(path, uid, -1)


def slurm_knows(jobs: Mapping[int, tuple[str, str]]):  # type: ignore[no-untyped-def]
    asked: list[list[str]] = []

    def pending_of(users: Iterable[str]) -> Mapping[int, tuple[str, str]]:
        asked.append(list(users))
        return jobs

    return pending_of, asked


def ids(recs: list[dict[str, object]]) -> list[object]:
    return [r["job_id"] for r in recs]


def test_made_up_records_of_another_user_do_not_count(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir(mode=0o1777)
    write(d / f"optsub-{OTHER}.jsonl", [rec(1000 + i, str(OTHER)) for i in range(100)], OTHER)
    spool.append(rec(5, ME), str(d))
    none, asked = slurm_knows({})
    assert ids(recent_submissions([str(d)], since=NOW, pending_of=none)) == [5]
    assert asked == [[str(OTHER)]]
    # two of them are real pending jobs of that user (one in another partition than claimed)
    real, _ = slurm_knows({1000: (str(OTHER), "h100"), 1001: (str(OTHER), "a100"), 5: (ME, "h100")})
    assert ids(recent_submissions([str(d)], since=NOW, pending_of=real)) == [5, 1000]


def test_one_users_records_are_capped(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir(mode=0o1777)
    write(d / f"optsub-{OTHER}.jsonl", [rec(1000 + i, str(OTHER)) for i in range(100)], OTHER)
    real, _ = slurm_knows({1000 + i: (str(OTHER), "h100") for i in range(100)})
    got = recent_submissions([str(d)], since=NOW, pending_of=real)
    assert len(got) == OVERLAY_MAX_PER_USER


def test_records_claiming_another_user_or_in_a_misnamed_file_do_not_count(
    tmp_path: Path,
) -> None:
    d = tmp_path / "spool"
    d.mkdir(mode=0o1777)
    write(d / f"optsub-{OTHER}.jsonl", [rec(7, ME)], OTHER)  # claims to be mine
    write(d / f"optsub-{ME}.x.jsonl", [rec(8, ME)], OTHER)  # named after me, owned by OTHER
    real, _ = slurm_knows({7: (ME, "h100"), 8: (ME, "h100")})
    assert recent_submissions([str(d)], since=NOW, pending_of=real) == []


def test_symlinks_fifos_and_hard_links_are_not_read(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir(mode=0o1777)
    secret = tmp_path / "root-only.jsonl"
    write(secret, [rec(9, ME)], 0)
    os.chmod(secret, 0o600)
    (d / f"optsub-{ME}.jsonl").symlink_to(secret)
    os.link(secret, d / f"optsub-{ME}.hard.jsonl")
    os.mkfifo(d / f"optsub-{ME}.fifo.jsonl")  # no writer: a blocking open would hang
    assert recent_submissions([str(d)], since=NOW, pending_of=lambda u: {}) == []
    # a spool directory that is a symlink is not read either
    (tmp_path / "linked").symlink_to(d)
    assert recent_submissions([str(tmp_path / "linked")], since=NOW) == []


def test_the_writer_never_appends_to_a_file_it_does_not_own(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir(mode=0o1777)
    trap = d / f"optsub-{ME}.jsonl"
    trap.write_text("")
    os.chown(trap, OTHER, -1)
    os.chmod(trap, 0o666)
    path = spool.append(rec(3, ME), str(d))
    assert path != str(trap) and trap.read_text() == ""
    assert [r["job_id"] for r in spool.read(path)] == [3]
    # a symlink planted under my name is not followed
    trap.unlink()
    target = tmp_path / "victim"
    target.write_text("")
    trap.symlink_to(target)
    path = spool.append(rec(4, ME), str(d))
    assert target.read_text() == "" and os.path.basename(path).startswith(f"optsub-{ME}.")


def test_a_flood_of_files_costs_only_its_owner(tmp_path: Path) -> None:
    from slurmopt.optsub.state import OVERLAY_MAX_FILES_PER_USER

    d = tmp_path / "spool"
    d.mkdir(mode=0o1777)
    for i in range(OVERLAY_MAX_FILES_PER_USER + 50):
        write(d / f"optsub-{OTHER}.f{i}.jsonl", [rec(2000 + i, str(OTHER))], OTHER)
    spool.append(rec(5, ME), str(d))
    real, _ = slurm_knows({2000 + i: (str(OTHER), "h100") for i in range(200)})
    got = ids(recent_submissions([str(d)], since=NOW, pending_of=real))
    assert 5 in got and len(got) == 1 + OVERLAY_MAX_FILES_PER_USER
