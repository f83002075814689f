"""The trust decisions (docs/security.md) as tables, and the safe file readers they rest on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from slurmopt.fsutil import (
    Refused,
    json_depth,
    open_dir_nofollow,
    open_regular_at,
    read_lines_bounded,
)
from slurmopt.trust import (
    Claim,
    allowed_set,
    claim_refusal,
    file_refusal,
    overlay_refusal,
    record_refusal,
)


@pytest.mark.parametrize(
    ("name", "owner", "why"),
    [
        ("optsub-alice.jsonl", "alice", None),
        ("optsub-alice.jsonl.17.42.claimed", "alice", None),
        ("optsub-alice.fallback-host.jsonl", "alice", None),
        ("optsub-alice.jsonl", "mallory", "file named after another user, owned by mallory"),
        ("optsub-alice.b.jsonl", "alice.b", None),
        ("optsub-alice.jsonl", "alice.b", "file named after another user, owned by alice.b"),
        ("optsub-alicex.jsonl", "alice", "file named after another user, owned by alice"),
        ("zz.jsonl", "root", "not an optsub spool file name"),
    ],
)
def test_file_refusal(name: str, owner: str, why: str | None) -> None:
    assert file_refusal(name, owner) == why


@pytest.mark.parametrize(
    ("rec", "owner", "why"),
    [
        ({"user": "alice", "job_id": 5}, "alice", None),
        ({"job_id": 5}, "alice", None),  # no claim: stored as the owner's
        ({"user": "alice", "job_id": None}, "alice", None),
        (
            {"user": "alice", "job_id": 5},
            "mallory",
            "record claims user 'alice' in a file owned by mallory",
        ),
        ({"user": 7, "job_id": 5}, "alice", "user is not a string"),
        ({"user": "alice", "job_id": "5"}, "alice", "job_id is not an integer"),
        ({"user": "alice", "job_id": True}, "alice", "job_id is not an integer"),
    ],
)
def test_record_refusal(rec: dict[str, object], owner: str, why: str | None) -> None:
    assert record_refusal(rec, owner) == why


C = Claim(job_id=5, owner="alice", allowed=("a100", "h100"), pinned=True, at=1000, cluster="c1")


@pytest.mark.parametrize(
    ("claim", "job_user", "submit", "cluster", "why"),
    [
        (C, "alice", 990, "c1", None),
        (C, "alice", None, "", None),
        (C, "bob", 990, "c1", "record written by alice for a job of bob"),
        (C, "alice", 990, "c2", "record is for cluster 'c1'"),
        (Claim(5, "alice", (), True, 1000), "alice", 990, "c2", None),  # no cluster named
        (
            C,
            "alice",
            1000 + 601,
            "c1",
            "record is older than the job (an earlier job with the same id)",
        ),
        (C, "alice", 1000 + 600, "c1", None),  # clock skew allowed
    ],
)
def test_claim_refusal(
    claim: Claim, job_user: str, submit: int | None, cluster: str, why: str | None
) -> None:
    assert claim_refusal(claim, job_user=job_user, submit_time=submit, cluster=cluster) == why


@pytest.mark.parametrize(
    ("claimed", "current", "want"),
    [
        (("h100", "a100"), ("a100",), ("h100", "a100")),
        (("h100",), ("a100",), ("h100", "a100")),  # the submitted partition is always allowed
        ((), ("a100", "v100"), ("a100", "v100")),
        (("h100", "", "h100"), ("t4",), ("h100", "t4")),
    ],
)
def test_allowed_set_contains_the_submitted_partitions(
    claimed: tuple[str, ...], current: tuple[str, ...], want: tuple[str, ...]
) -> None:
    assert allowed_set(claimed, current) == want


@pytest.mark.parametrize(
    ("rec", "owner", "me", "slurm_owner", "why"),
    [
        ({"user": "alice", "job_id": 9}, "alice", "alice", None, None),  # my own records count
        ({"user": "bob", "job_id": 9}, "bob", "alice", "bob", None),  # bob's real pending job
        ({"user": "bob", "job_id": 9}, "bob", "alice", None, "job id not pending in Slurm"),
        ({"user": "bob", "job_id": 9}, "bob", "alice", "carol", "job belongs to carol"),
        (
            {"user": "carol", "job_id": 9},
            "bob",
            "alice",
            "carol",
            "record claims user 'carol' in a file owned by bob",
        ),
        (
            {"user": "alice", "job_id": 9},
            "mallory",
            "alice",
            None,
            "record claims user 'alice' in a file owned by mallory",
        ),
    ],
)
def test_overlay_refusal(
    rec: dict[str, object], owner: str, me: str, slurm_owner: str | None, why: str | None
) -> None:
    assert overlay_refusal(rec, owner=owner, me=me, slurm_owner=slurm_owner) == why


def _open(tmp_path: Path, name: str) -> int:
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd, _st = open_regular_at(d, name)
        return fd
    finally:
        os.close(d)


def test_open_regular_at_refuses_links_fifos_and_directories(tmp_path: Path) -> None:
    (tmp_path / "ok").write_text("x\n")
    os.close(_open(tmp_path, "ok"))
    secret = tmp_path / "secret"
    secret.write_text("root only\n")
    (tmp_path / "sym").symlink_to(secret)
    os.link(secret, tmp_path / "hard")
    os.mkfifo(tmp_path / "fifo")  # nobody writes it: a blocking open would hang here
    (tmp_path / "dir").mkdir()
    for name, why in [
        ("sym", "a symlink"),
        ("hard", "2 hard links"),
        ("fifo", "not a regular file"),
        ("dir", "not a regular file"),
    ]:
        with pytest.raises(Refused, match=why):
            _open(tmp_path, name)


def test_open_dir_nofollow(tmp_path: Path) -> None:
    good = tmp_path / "spool"
    good.mkdir(mode=0o755)
    os.close(open_dir_nofollow(good))
    (tmp_path / "link").symlink_to(good)
    with pytest.raises(Refused, match="symlink"):
        open_dir_nofollow(tmp_path / "link")
    os.chmod(good, 0o777)
    with pytest.raises(Refused, match="without the sticky bit"):
        open_dir_nofollow(good)
    os.chmod(good, 0o1777)
    os.close(open_dir_nofollow(good))
    with pytest.raises(FileNotFoundError):
        open_dir_nofollow(tmp_path / "missing")


def test_read_lines_bounded_drops_long_lines_without_holding_them(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"a\n" + b"x" * 5000 + b"\nb\n" + b"y" * 3000 + b"\nc")
    fd = os.open(p, os.O_RDONLY)
    try:
        lines, too_long, truncated = read_lines_bounded(fd, max_bytes=1 << 20, max_line=1000)
    finally:
        os.close(fd)
    assert (lines, too_long, truncated) == ([b"a", b"b", b"c"], 2, False)
    fd = os.open(p, os.O_RDONLY)
    try:
        _lines, _n, truncated = read_lines_bounded(fd, max_bytes=100, max_line=1000)
    finally:
        os.close(fd)
    assert truncated


@pytest.mark.parametrize(("value", "depth"), [(1, 0), ({}, 1), ({"a": [1, {"b": []}]}, 4)])
def test_json_depth(value: object, depth: int) -> None:
    assert json_depth(value, 32) == depth


def test_json_depth_stops_at_the_limit() -> None:
    deep = json.loads("[" * 500 + "]" * 500)
    assert json_depth(deep, 32) == 33


def test_refusals_escape_control_characters() -> None:
    from slurmopt.trust import Refusal

    r = Refusal("ingest", "mallory", "optsub-mallory.\nrefused (ingest): fake", "why")
    assert "\n" not in r.what and r.what.endswith("\\nrefused (ingest): fake")


def test_spool_stats_with_refusals_to_dict() -> None:
    # tests/slurm/test_security.py failed on it (3 tests, 2026-12-04): asdict() deep-copied
    # the refusals, and the immutable Refusal cannot be rebuilt field by field
    from slurmopt.history.spool import SpoolStats
    from slurmopt.trust import Refusal

    stats = SpoolStats(files=1, refused_files=1)
    stats.refusals.append(Refusal("ingest", "mallory", "optsub-x.jsonl", "owner mismatch"))
    d = stats.to_dict()
    assert d["files"] == 1 and d["refused_files"] == 1
    assert d["refusals"] == [stats.refusals[0].to_dict()]
    assert d["refusals"][0]["who"] == "mallory"
    assert json.loads(json.dumps(d)) == d
