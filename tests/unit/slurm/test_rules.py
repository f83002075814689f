"""Slurm's time and memory strings: one implementation (slurmopt.slurm.fields), pinned by tables.

The option tables are also run against the real sbatch (tests/slurm/test_rules_sbatch.py);
the printed tables are checked against every recorded Slurm output below.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slurmopt.errors import SlurmParseError
from slurmopt.slurm import fields

from .fakes import RECORDED, VERSIONS
from .rules_tables import DURATION_PRINTED, MEM_OPTION, MEM_PRINTED, TIME_OPTION


@pytest.mark.parametrize(("value", "expected"), TIME_OPTION)
def test_time_option_as_sbatch_reads_it(value: str, expected: int | str | None) -> None:
    if expected == "reject":
        with pytest.raises(ValueError):
            fields.parse_time_option(value)
    else:
        assert fields.parse_time_option(value) == expected


@pytest.mark.parametrize(("value", "expected"), MEM_OPTION)
def test_mem_option_as_sbatch_reads_it(value: str, expected: int | str) -> None:
    if expected == "reject":
        with pytest.raises(ValueError):
            fields.parse_mem_option(value)
    else:
        assert fields.parse_mem_option(value) == expected


@pytest.mark.parametrize(("text", "expected"), DURATION_PRINTED)
def test_duration_as_slurm_prints_it(text: str | None, expected: int | None) -> None:
    assert fields.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "2 days", "1:2:3:4", "1.5"])
def test_printed_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(SlurmParseError):
        fields.parse_duration(text)


@pytest.mark.parametrize(("text", "expected"), MEM_PRINTED)
def test_mem_as_slurm_prints_it(text: str | None, expected: int | None) -> None:
    assert fields.parse_mem_mb(text) == expected


@pytest.mark.parametrize("seconds", [None, 0, 59, 3600, 86399, 86400, 172800 + 3661])
def test_format_then_parse_round_trips(seconds: int | None) -> None:
    assert fields.parse_duration(fields.format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(59, "00:00:59"), (59.6, "00:01:00"), (90061, "1-01:01:01"), (None, "UNLIMITED")],
)
def test_format_duration_as_slurm_prints(seconds: float | None, text: str) -> None:
    assert fields.format_duration(seconds) == text
    assert fields.format_duration(float("inf")) == "UNLIMITED"


def _recorded_values(pattern: str) -> set[str]:
    rx = re.compile(pattern)
    found: set[str] = set()
    for version in VERSIONS:
        for path in Path(RECORDED, version).rglob("*"):
            if path.is_file():
                found.update(rx.findall(path.read_text(errors="replace")))
    return found


def test_every_recorded_duration_parses() -> None:
    values = _recorded_values(r"(?:TimeLimit|MaxTime|DefaultTime|TimeMin)=([^\s,]+)")
    assert {"UNLIMITED", "NONE", "2-00:00:00", "01:00:00"} <= values
    for v in values:
        fields.parse_duration(v)


def test_every_recorded_memory_size_parses() -> None:
    values = _recorded_values(r"(?:\bmem|MemPerNode|MemPerCPU|RealMemory)=([^\s,\"]+)")
    assert {"8000M", "UNLIMITED"} <= values
    for v in values:
        fields.parse_mem_mb(v)
