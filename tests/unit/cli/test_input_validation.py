"""Bad input at every CLI reader: one clear line and exit 2 (8 for a database), never a traceback.

Property tests (hypothesis) over generated bad inputs for the readers of
snapshots (``plan`` / ``snapshot --snapshot``), the state cache, configuration
files (``config check``) and database URLs (``report --db``), plus the cases
of issue 13 by name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmopt.cli.main import cli
from slurmopt.statecache import CacheError, read_cache

DATA = Path(__file__).parents[2] / "data" / "optimize"
GOOD = json.loads((DATA / "snapshot_hetero.json").read_text())
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def clean_failure(res: Result, code: int = 2) -> str:
    """The run failed with ``code``, one ``slurmopt: error:`` line, no traceback."""
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == code, (res.exit_code, res.output)
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("slurmopt: error: "), res.stderr
    return lines[0]


# -- snapshots ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda d: d["nodes"][0].update(cpus="many"), "nodes[0].cpus: expected an integer"),
        (
            lambda d: next(n for n in d["nodes"] if n["gpus"]).update(gpus={"h100": "eight"}),
            ".gpus.h100: expected an integer, got 'eight'",
        ),
        (lambda d: d["jobs"][0]["request"].update(gpus_per_node=[1]), "request.gpus_per_node"),
        (lambda d: d["partitions"][1].update(nodes="gpu1"), "partitions[1].nodes: expected a list"),
        (lambda d: d["jobs"][0].update(bogus=1), "jobs[0].bogus: unknown field"),
        (lambda d: d["nodes"][0].pop("name"), "nodes[0].name: missing"),
        (lambda d: d.update(taken_at=float("nan")), "taken_at: expected an integer"),
        (lambda d: d["jobs"][0].update(job_id=2**70), "jobs[0].job_id: "),
    ],
)
def test_snapshot_fields_are_checked_by_name(tmp_path: Path, mutate: Any, named: str) -> None:
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    line = clean_failure(invoke("plan", "--snapshot", str(path)))
    assert named in line, line


def test_binary_and_deep_snapshots(tmp_path: Path) -> None:
    binary = tmp_path / "b.json"
    binary.write_bytes(bytes(range(256)) * 8)
    assert "not UTF-8" in clean_failure(invoke("plan", "--snapshot", str(binary)))
    deep = tmp_path / "d.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in clean_failure(invoke("plan", "--snapshot", str(deep)))


def _paths(d: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every (section, index, field[, subfield]) of the first objects of each section."""
    out: list[tuple[Any, ...]] = [("taken_at",)]
    for section in ("nodes", "partitions", "jobs"):
        for i in (0, 1):
            for key, value in d[section][i].items():
                out.append((section, i, key))
                if isinstance(value, dict):
                    out += [(section, i, key, k) for k in value]
    return out


PATHS = _paths(GOOD)


@SETTINGS
@given(where=st.sampled_from(PATHS), value=json_values)
def test_any_value_anywhere_in_a_snapshot_fails_cleanly(
    tmp_path: Path, where: tuple[Any, ...], value: Any
) -> None:
    data = json.loads(json.dumps(GOOD))
    target = data
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))  # NaN / Infinity as Python's json writes them
    res = invoke("snapshot", "--snapshot", str(path), "--json")
    if res.exit_code == 0:
        return  # a value of the right type
    line = clean_failure(res)
    named = where[0] if len(where) == 1 else f"{where[0]}[{where[1]}]"
    assert named in line, line


@SETTINGS
@given(raw=st.binary(max_size=512))
def test_random_bytes_as_a_snapshot(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(raw)
    clean_failure(invoke("snapshot", "--snapshot", str(path)))


@SETTINGS
@given(where=st.sampled_from(PATHS), value=json_values)
def test_state_cache_reader_raises_only_cache_errors(
    tmp_path: Path, where: tuple[Any, ...], value: Any
) -> None:
    snap = json.loads(json.dumps(GOOD))
    target = snap
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    path = tmp_path / "cache.json"
    path.write_text(json.dumps({"format": 1, "snapshot": snap, "runtimes": {"1": value}}))
    try:
        read_cache(path, max_age_s=math.inf, now=GOOD["taken_at"])
    except CacheError as exc:
        assert str(exc).startswith(f"state cache {path}")


# -- configuration --------------------------------------------------------------------


def test_config_check_on_a_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'[controller]\nmode = "\xff\xfe"\n')
    line = clean_failure(invoke("config", "check", "--config", str(path)))
    assert "not UTF-8" in line and str(path) in line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+inf", "1e20", "-1e20", "1e10"])
@pytest.mark.parametrize(
    "key", ["controller.budget_s", "optsub.sbatch_timeout_s", "history.busy_timeout_s"]
)
def test_config_durations_must_be_finite_and_bounded(tmp_path: Path, key: str, value: str) -> None:
    section, name = key.split(".")
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{name} = {value}\n")
    line = clean_failure(invoke("config", "check", "--config", str(path)))
    assert f"[{section}] {name}:" in line


@SETTINGS
@given(
    value=st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
)
def test_any_number_for_a_duration(tmp_path: Path, value: float) -> None:
    path = tmp_path / "c.toml"
    text = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    path.write_text(f"[controller]\nimminent_s = {text.replace('e+', 'e')}\n")
    res = invoke("config", "check", "--config", str(path))
    ok = math.isfinite(value) and abs(value) <= 10 * 365 * 86400
    if res.exit_code == 0:
        assert ok, value
    else:
        assert "[controller] imminent_s:" in clean_failure(res) or not ok


@SETTINGS
@given(raw=st.binary(max_size=256))
def test_random_bytes_as_a_config_file(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(raw)
    res = invoke("config", "check", "--config", str(path))
    if res.exit_code != 0:
        assert str(path) in clean_failure(res)


# -- database URLs --------------------------------------------------------------------


def test_report_on_garbage_url(tmp_path: Path) -> None:
    line = clean_failure(invoke("report", "summary", "--db", "garbage://x"))
    assert "invalid database URL" in line


def test_report_on_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "missing.sqlite"
    line = clean_failure(invoke("report", "summary", "--db", f"sqlite:///{path}"), code=8)
    assert "does not exist" in line
    assert not path.exists() and not path.parent.exists()
    why = invoke("why", "1", "--db", f"sqlite:///{path}", "--no-live")
    assert "does not exist" in clean_failure(why, code=8)
    assert not path.exists()


@SETTINGS
@given(
    scheme=st.sampled_from(["", "garbage://", "sqlite:///", "mysql://", "postgresql+nosuch://"]),
    rest=st.text(max_size=30),
)
def test_any_database_url(tmp_path: Path, scheme: str, rest: str) -> None:
    url = scheme + rest.replace("\x00", "")
    if scheme == "sqlite:///":
        url = f"sqlite:///{tmp_path}/{rest.replace('/', '_').replace(chr(0), '') or 'x'}.db"
    res = invoke("report", "summary", "--db", url)
    assert res.exit_code in (2, 8), (url, res.output)
    clean_failure(res, res.exit_code)
    assert not list(tmp_path.glob("*.db"))
