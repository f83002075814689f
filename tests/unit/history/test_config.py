"""Where the database is, and the light import promise of ``slurmopt.history``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurmopt.history.config import HistoryConfig, sqlite_url


def test_env_url_wins_then_config_then_default(tmp_path: Path) -> None:
    cfg = HistoryConfig(url="postgresql+psycopg://u@h/db")
    assert cfg.resolved_url({"SLURMOPT_DB_URL": "sqlite:////x.db"}) == "sqlite:////x.db"
    assert cfg.resolved_url({}) == "postgresql+psycopg://u@h/db"
    default = HistoryConfig().resolved_url({"XDG_STATE_HOME": str(tmp_path), "HOME": "/nowhere"})
    assert default.startswith("sqlite:///") and default.endswith("history.sqlite")
    assert sqlite_url("rel/x.db").startswith("sqlite:////")


def test_spool_dir_resolution(tmp_path: Path) -> None:
    assert HistoryConfig().resolved_spool({"SLURMOPT_SPOOL_DIR": "/s"}) == Path("/s")
    assert HistoryConfig().resolved_spool({"SLURMOPT_SPOOL": "/t"}) == Path("/t")
    assert HistoryConfig(spool_dir="/c").resolved_spool({}) == Path("/c")
    # the default is where optsub writes by default (its shared spool for root)
    from slurmopt.optsub.spool import SHARED_SPOOL, spool_dirs

    default = HistoryConfig().resolved_spool({"XDG_STATE_HOME": str(tmp_path)})
    if os.geteuid() == 0:
        assert default == Path(SHARED_SPOOL)
    else:
        assert default == spool_dirs("", {"XDG_STATE_HOME": str(tmp_path)})[-1]


def test_history_package_and_config_do_not_import_sqlalchemy() -> None:
    code = (
        "import sys, slurmopt.history, slurmopt.history.config; print('sqlalchemy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1700000000", 1700000000), ("2026-11-20T10:00:00+00:00", 1795168800), (None, None)],
)
def test_parse_when(text: str | None, expected: int | None) -> None:
    from slurmopt.cli.db import parse_when

    assert parse_when(text) == expected


def test_parse_when_relative() -> None:
    import time

    from slurmopt.cli.db import parse_when

    got = parse_when("-2h")
    assert got is not None and abs(got - (time.time() - 7200)) < 5
