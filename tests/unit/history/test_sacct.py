"""sacct parsing (text as ``sacct --parsable2 --noheader`` prints it) and the no-accounting path."""

from __future__ import annotations

from datetime import datetime

import pytest

from slurmopt.errors import SlurmCommandError
from slurmopt.model import JobState
from slurmopt.slurm.accounting import (
    FIELDS,
    accounting_unavailable,
    fetch_sacct,
    parse_sacct,
    sacct_argv,
    sacct_ids_argv,
)
from slurmopt.slurm.backend import CliBackend
from tests.unit.slurm.fakes import FakeRunner, fail, ok

# columns: FIELDS (JobIDRaw ... ExitCode, AllocTRES, JobName)
TEXT = """\
101|101|alice|proj|a100|COMPLETED|2026-11-20T10:00:00|2026-11-20T10:05:00|2026-11-20T11:05:00|3600|120|0:0|billing=1,cpu=1,gres/gpu=2,mem=2G,node=1|train
101.batch|101.batch|||||2026-11-20T10:05:00|2026-11-20T10:05:00|2026-11-20T11:05:00|3600||0:0||batch
102|102|bob|proj|h100|CANCELLED by 1000|2026-11-20T10:00:00|None|2026-11-20T10:30:00|0|60|0:0||a|b
103|103|bob|proj|h100|RUNNING|2026-11-20T10:00:00|2026-11-20T10:01:00|Unknown|600|UNLIMITED|0:0|cpu=1,gres/gpu:h100=1,node=1|long
120_3|120_3|carol|||TIMEOUT|2026-11-20T09:00:00|2026-11-20T09:00:10|2026-11-20T10:00:10|3600|60|0:15||arr
garbage line
"""


def _t(s: str) -> int:
    return int(datetime.fromisoformat(s).timestamp())


def test_parse_allocations_only() -> None:
    recs = parse_sacct(TEXT)
    assert [r.job_id for r in recs] == [101, 102, 103]  # steps, array display ids, garbage out
    done, cancelled, running = recs
    assert done.state is JobState.COMPLETED
    assert (done.submit, done.start, done.end) == (
        _t("2026-11-20T10:00:00"),
        _t("2026-11-20T10:05:00"),
        _t("2026-11-20T11:05:00"),
    )
    assert (done.elapsed_s, done.time_limit_s, done.name) == (3600, 7200, "train")
    assert cancelled.state is JobState.CANCELLED and cancelled.state_detail == "CANCELLED by 1000"
    assert cancelled.start is None and cancelled.name == "a|b"  # a | in the name is kept
    assert running.state.active and running.end is None and running.time_limit_s is None
    # GPUs from AllocTRES (AccountingStorageTRES=gres/gpu): plain, else typed; none = 0
    assert (done.gpus, cancelled.gpus, running.gpus) == (2, 0, 1)
    assert done.ran and not cancelled.ran  # cancelled before it started: no run


def test_argv_asks_for_the_parsed_columns() -> None:
    argv = sacct_argv(0, 3600)
    assert argv[0] == "sacct" and "--parsable2" in argv and "--noheader" in argv
    assert f"--format={','.join(FIELDS)}" in argv
    assert any(a.startswith("--starttime=") for a in argv)
    assert any(a.startswith("--endtime=") for a in argv)


@pytest.mark.parametrize(
    "message",
    [
        "Slurm accounting storage is disabled",  # what the testbed's sacct prints (rc 1)
        "sacct: error: Problem talking to the database: Connection refused",
    ],
)
def test_no_accounting_returns_none(message: str) -> None:
    argv = tuple(sacct_argv(1000))
    assert accounting_unavailable(message)
    runner = FakeRunner({argv: fail(argv, message)})
    assert fetch_sacct(runner, 1000) is None
    assert runner.calls == [argv]


def test_other_failures_raise_and_success_returns_text() -> None:
    argv = tuple(sacct_argv(1000))
    with pytest.raises(SlurmCommandError):
        fetch_sacct(FakeRunner({argv: fail(argv, "sacct: error: Invalid field requested")}), 1000)
    assert fetch_sacct(FakeRunner({argv: ok(argv, TEXT)}), 1000) == TEXT


def test_backend_reads_accounting_as_records() -> None:
    argv = tuple(sacct_argv(1000))
    records = CliBackend(FakeRunner({argv: ok(argv, TEXT)})).accounting(1000)
    assert records is not None and [r.job_id for r in records] == [101, 102, 103]
    none = FakeRunner({argv: fail(argv, "Slurm accounting storage is disabled")})
    assert CliBackend(none).accounting(1000) is None


def test_backend_reads_jobs_by_id() -> None:
    argv = tuple(sacct_ids_argv([103, 101, 101]))
    assert argv[-1] == "--jobs=101,103" and not any(a.startswith("--starttime") for a in argv)
    records = CliBackend(FakeRunner({argv: ok(argv, TEXT)})).accounting(0, job_ids=[103, 101])
    assert records is not None and [r.job_id for r in records] == [101, 102, 103]
    assert CliBackend(FakeRunner({})).accounting(0, job_ids=[]) == []  # nothing to ask
