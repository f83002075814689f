"""The db / ingest / report / why commands through Click's runner, on a populated database."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from slurmopt.cli.main import cli
from slurmopt.history.db import transaction
from slurmopt.history.ingest import observe, record_decision, record_prediction, record_telemetry
from slurmopt.history.reports import KINDS
from slurmopt.model import JobState

from .conftest import job, snap


def run(args: list[str], url: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, [*args, "--db", url])
    return res.exit_code, res.output


@pytest.fixture
def populated(engine: Engine, db_url: str) -> str:
    """Three jobs over four snapshots, decisions, predictions and GPU telemetry."""
    snaps = [
        snap(1100, job(1), job(2, partitions=("a100",), user="bob")),
        snap(
            1200,
            job(1, partitions=("h100",)),
            job(2, JobState.RUNNING, ("a100",), user="bob", start=1150, gpus_alloc={"a100": 2}),
        ),
        snap(1300, job(1, JobState.RUNNING, ("h100",), start=1250, gpus_alloc={"h100": 2})),
        snap(1400),
    ]
    with transaction(engine) as s:
        for x in snaps:
            observe(s, x)
        record_prediction(
            s, job_id=1, made_at=1150, predictor="envelope", runtime_s=300.0, cluster="test"
        )
        record_decision(
            s,
            job_id=1,
            decided_at=1150,
            cluster="test",
            mode="enforce",
            to_partition="h100",
            from_partitions="a100,h100",
            predicted_start=1240.0,
            predicted_end=1540.0,
            gain_s=600.0,
            applied=True,
            outcome="applied",
            reason="earlier completion on h100",
            slurm_estimate_start=1900,
            candidates=[
                {"partition": "a100", "eligible": True, "start": 1900, "end": 2500},
                {"partition": "h100", "eligible": True, "start": 1240, "end": 1540, "chosen": True},
            ],
        )
        for t in range(1250, 1400, 30):
            for g in (0, 1):
                record_telemetry(
                    s,
                    at=t,
                    node="gpu-h1",
                    gpu_index=g,
                    job_id=1,
                    gpu_type="h100",
                    util_pct=90.0 if g == 0 else 10.0,
                )
    return db_url


def test_db_commands(populated: str, tmp_path: Path) -> None:
    code, out = run(["db", "upgrade"], populated)
    assert code == 0 and json.loads(out)["to"] == json.loads(out)["from"]
    code, out = run(["db", "current"], populated)
    cur = json.loads(out)
    assert code == 0 and cur["current"] == cur["head"]
    code, out = run(["db", "export", "--table", "jobs", "--format", "csv"], populated)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and sorted(r["job_id"] for r in rows) == ["1", "2"]
    code, out = run(["db", "export", "--table", "jobs", "--table", "job_events"], populated)
    data = json.loads(out)
    assert code == 0 and len(data["jobs"]) == 2 and len(data["job_events"]) >= 6
    code, out = run(["db", "export", "--table", "nope"], populated)
    assert code == 2
    code, out = run(["db", "prune", "--older-than", "1"], populated)
    deleted = json.loads(out)["deleted"]
    assert code == 0 and deleted["jobs"] == 2 and deleted["snapshots"] == 4


def test_db_commands_refuse_an_unupgraded_database(tmp_path: Path) -> None:
    code, out = run(["db", "export"], f"sqlite:///{tmp_path / 'empty.sqlite'}")
    from slurmopt.history.db import DatabaseError

    assert code == DatabaseError.exit_code and "slurmopt db upgrade" in out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["table", "csv", "json", "html"])
def test_every_report_in_every_text_format(populated: str, kind: str, fmt: str) -> None:
    code, out = run(["report", kind, "--format", fmt], populated)
    assert code == 0, out
    if fmt == "json":
        data = json.loads(out)
        assert data["report"] == kind and data["sections"]
    elif fmt == "csv":
        assert out.startswith("# ")
    elif fmt == "html":
        assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    else:
        assert "==" in out


def test_report_contents(populated: str) -> None:
    _, out = run(["report", "jobs", "--format", "json", "--user", "bob"], populated)
    rows = json.loads(out)["sections"][0]["rows"]
    assert [r["job"] for r in rows] == [2]
    assert rows[0]["wait (s)"] == 150.0 and rows[0]["partition"] == "a100"
    _, out = run(["report", "decisions", "--format", "json"], populated)
    d = json.loads(out)["sections"][0]["rows"][0]
    assert (d["to"], d["actual start"], d["realized gain (s)"]) == ("h100", 1250, 650.0)
    _, out = run(["report", "gpu", "--format", "json"], populated)
    sec = json.loads(out)["sections"]
    assert sec[0]["rows"][0]["user"] == "alice"
    assert sec[0]["rows"][0]["mean util %"] == pytest.approx(50.0)
    _, out = run(["report", "partitions", "--format", "json", "--partition", "a100"], populated)
    part = json.loads(out)["sections"][0]["rows"]
    assert [p["partition"] for p in part] == ["a100"] and part[0]["mean GPU util %"] == 50.0


def test_html_report_is_self_contained_with_charts(populated: str, tmp_path: Path) -> None:
    out_file = tmp_path / "r.html"
    code, _ = run(["report", "partitions", "--format", "html", "-o", str(out_file)], populated)
    text = out_file.read_text()
    assert code == 0
    assert text.count('src="data:image/png;base64,') == 2
    assert "http://" not in text and "https://" not in text and "<script" not in text


def test_why_tells_the_story(populated: str) -> None:
    code, out = run(["why", "1", "--no-live"], populated)
    assert code == 0
    assert "moved it to h100" in out and "earlier completion on h100" in out
    assert "* h100" in out and "a100" in out
    assert "final state unknown" in out and "Predicted runtime: 5m00s" in out
    code, out = run(["why", "2", "--no-live", "--json"], populated)
    data = json.loads(out)
    assert code == 0 and data["decisions"] == [] and data["job"]["partition"] == "a100"
    code, out = run(["why", "2", "--no-live"], populated)
    assert "Slurm's own decision" in out
    code, out = run(["why", "999", "--no-live"], populated)
    assert code == 1 and "no record" in out


def test_why_shows_the_allowed_set_optsub_recorded(engine: Engine, db_url: str) -> None:
    # Slurm (and so the jobs table) only knows the partition optsub chose; the owner's
    # allowed set is in optsub's decision.
    with transaction(engine) as s:
        observe(s, snap(1100, job(5, partitions=("a100",))))
        record_decision(
            s, job_id=5, decided_at=1090, source="optsub", from_partitions="v100,a100,h100",
            to_partition="a100",
        )  # fmt: skip
        observe(s, snap(1100, job(6, partitions=("t4",))))
    code, out = run(["why", "5", "--no-live"], db_url)
    assert code == 0 and "allowed partitions: v100,a100,h100" in out
    code, out = run(["why", "6", "--no-live", "--json"], db_url)
    assert code == 0 and json.loads(out)["job"]["allowed"] == "t4"


def test_ingest_commands(engine: Engine, db_url: str, tmp_path: Path) -> None:
    f1, f2 = tmp_path / "s1.json", tmp_path / "s2.json"
    f1.write_text(json.dumps(snap(1100, job(7)).to_dict()))
    f2.write_text(json.dumps(snap(1200).to_dict()))
    code, out = run(["ingest", "snapshot", str(f2), str(f1)], db_url)
    res = json.loads(out)
    assert code == 0 and [r["taken_at"] for r in res] == [1100, 1200]
    assert res[0]["jobs_new"] == 1 and res[1]["left"] == 1
    spool = tmp_path / "spool"
    spool.mkdir()
    from slurmopt.trust import me

    name = spool / f"optsub-{me()}.jsonl"  # a file not named after its owner is refused
    name.write_text(json.dumps({"key": "k1", "at": 5, "job_id": 7}) + "\n")
    os.utime(name, (1, 1))
    code, out = run(["ingest", "spool", "--spool", str(spool)], db_url)
    assert code == 0 and json.loads(out)["inserted"] == 1
    sacct = tmp_path / "sacct.txt"
    sacct.write_text(
        "8|8|eve|p|cpu|COMPLETED|2026-11-20T10:00:00|2026-11-20T10:00:01|"
        "2026-11-20T10:01:01|60|10|0:0||x\n"
    )
    code, out = run(["ingest", "sacct", "--since", "0", "--from-file", str(sacct)], db_url)
    assert code == 0 and json.loads(out)["added"] == 1


def _chromium() -> str:
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium not installed")
    return exe


def _shot(exe: str, page: Path, png: Path) -> None:
    import subprocess

    argv = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--screenshot={png}",
        "--window-size=1000,1600",
        page.as_uri(),
    ]
    subprocess.run(argv, capture_output=True, timeout=120, check=True)


def _ink(png: Path) -> int:
    """Pixels that are neither white nor near-white."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(png)
    return int(np.count_nonzero(img[..., :3].min(axis=2) < 0.9))


def test_html_report_renders_in_headless_chromium(populated: str, tmp_path: Path) -> None:
    import re
    import subprocess

    if not populated.startswith("sqlite"):
        pytest.skip("rendering does not depend on the database: checked once, on SQLite")
    exe = _chromium()
    page = tmp_path / "report.html"
    code, _ = run(["report", "partitions", "--format", "html", "-o", str(page)], populated)
    assert code == 0
    dom = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert len(re.findall(r'<img class="chart"[^>]*src="data:image/png;base64,', dom)) == 2
    # the same page without its charts draws far less: the charts are really painted
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'<img class="chart"[^>]*>', "", page.read_text()))
    _shot(exe, page, tmp_path / "with.png")
    _shot(exe, bare, tmp_path / "without.png")
    assert _ink(tmp_path / "with.png") > _ink(tmp_path / "without.png") + 5000
