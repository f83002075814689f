"""``slurmopt config check`` warns when a file or directory has the wrong owner or mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slurmopt import config
from slurmopt.install_check import install_warnings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the modes are judged against root")


def _site(tmp_path: Path) -> tuple[dict[str, str], config.Loaded]:
    os.chmod(tmp_path, 0o755)
    env = {
        "SLURMOPT_SPOOL_DIR": str(tmp_path / "spool"),
        "SLURMOPT_STATE_CACHE": str(tmp_path / "cache.json"),
        "SLURMOPT_DB_URL": f"sqlite:///{tmp_path / 'history.sqlite'}",
        "SLURMOPT_ROUTING_FILE": str(tmp_path / "routing.txt"),
        "HOME": str(tmp_path),
    }
    loaded = config.load(
        [],
        {
            "controller.kill_switch": str(tmp_path / "etc" / "STOP"),
            "controller.lock_file": str(tmp_path / "lock"),
        },
    )
    (tmp_path / "etc").mkdir(mode=0o755)
    return env, loaded


def test_an_install_as_the_readme_says_has_no_warnings(tmp_path: Path) -> None:
    env, loaded = _site(tmp_path)
    (tmp_path / "spool").mkdir()
    os.chmod(tmp_path / "spool", 0o1777)
    for name, mode in [("cache.json", 0o644), ("routing.txt", 0o644), ("history.sqlite", 0o600)]:
        (tmp_path / name).write_text("")
        os.chmod(tmp_path / name, mode)
    got = install_warnings(loaded, env)
    assert [w for w in got if not w.startswith("sysctl")] == []  # the host's sysctls vary


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        (lambda t: t.joinpath("spool").mkdir(mode=0o755), "users cannot write it"),
        (lambda t: (t.joinpath("spool").mkdir(), os.chmod(t / "spool", 0o777)), "sticky"),
        (lambda t: t.joinpath("spool").symlink_to(t / "etc"), "is a symlink"),
        (
            lambda t: (t.joinpath("cache.json").write_text(""), os.chmod(t / "cache.json", 0o666)),
            "state cache: ",
        ),
        (
            lambda t: (
                t.joinpath("routing.txt").write_text(""),
                os.chown(t / "routing.txt", 4242, -1),
            ),
            "routing file: ",
        ),
        (
            lambda t: (
                t.joinpath("history.sqlite").write_text(""),
                os.chmod(t / "history.sqlite", 0o644),
            ),
            "other users can read it",
        ),
        (lambda t: os.chmod(t / "etc", 0o777), "kill switch"),
    ],
)
def test_wrong_modes_are_warned_about(tmp_path: Path, setup, needle: str) -> None:  # type: ignore[no-untyped-def]
    env, loaded = _site(tmp_path)
    if not (tmp_path / "spool").exists():
        setup(tmp_path)
    if not (tmp_path / "spool").exists() and not (tmp_path / "spool").is_symlink():
        (tmp_path / "spool").mkdir()
        os.chmod(tmp_path / "spool", 0o1777)
    got = install_warnings(loaded, env)
    assert any(needle in w for w in got), got


def test_root_does_not_read_a_config_file_others_can_write(tmp_path: Path) -> None:
    f = tmp_path / "user.toml"
    f.write_text('[controller]\nmode = "enforce"\n')
    os.chown(f, 4242, -1)
    loaded = config.load([f])
    assert loaded["controller"].mode == "observe"  # the user's file changed nothing
    with pytest.raises(config.ConfigError, match="refused as root"):
        config.load([], explicit=[f])
    os.chown(f, 0, -1)
    os.chmod(f, 0o666)
    assert config.load([f])["controller"].mode == "observe"
    os.chmod(f, 0o644)
    assert config.load([f])["controller"].mode == "enforce"


def test_optsub_writing_where_the_controller_does_not_read_is_warned(tmp_path: Path) -> None:
    env, _ = _site(tmp_path)
    env.pop("SLURMOPT_SPOOL_DIR")
    (tmp_path / "ingested").mkdir()
    os.chmod(tmp_path / "ingested", 0o1777)
    loaded = config.load(
        [],
        {
            "controller.kill_switch": str(tmp_path / "etc" / "STOP"),
            "controller.lock_file": str(tmp_path / "lock"),
            "history.spool_dir": str(tmp_path / "ingested"),
            "optsub.spool_dir": str(tmp_path / "elsewhere"),
        },
    )
    warnings = [w for w in install_warnings(loaded, env) if w.startswith("spool:")]
    assert warnings == [
        f"spool: optsub writes to {tmp_path / 'elsewhere'} ([optsub] spool_dir) but the "
        f"controller ingests {tmp_path / 'ingested'} ([history] spool_dir): set one of them "
        "(optsub uses [history] spool_dir when [optsub] spool_dir is empty)"
    ]
    same = config.load(
        [],
        {
            "controller.kill_switch": str(tmp_path / "etc" / "STOP"),
            "controller.lock_file": str(tmp_path / "lock"),
            "history.spool_dir": str(tmp_path / "ingested"),
        },
    )
    assert not [w for w in install_warnings(same, env) if w.startswith("spool:")]
