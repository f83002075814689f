"""optsub's configuration: layered files, only [optsub] and [optimize], errors are ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmopt.errors import ConfigError
from slurmopt.optsub.config import OptsubConfig, load, with_policy


def test_defaults_without_files(tmp_path: Path) -> None:
    oc, pc = load({}, paths=[tmp_path / "missing.toml"])
    assert oc == OptsubConfig()
    assert pc.window == 100


def test_layers_later_file_wins_other_sections_ignored(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        "[optsub]\npolicy = 'start'\ncache_max_age_s = 30\n[controller]\nanything = 1\n"
        "[optimize]\nwindow = 7\n"
    )
    user = tmp_path / "user.toml"
    user.write_text("[optsub]\ncache_max_age_s = 60\n")
    oc, pc = load({}, paths=[site, user])
    assert (oc.policy, oc.cache_max_age_s, pc.window) == ("start", 60.0, 7)


@pytest.mark.parametrize(
    "text",
    [
        "[optsub]\nno_such_key = 1\n",
        "[optsub]\npolicy = 'fastest'\n",
        "[optsub]\ncache_max_age_s = 'soon'\n",
        "[optsub\n",
        "optsub = 3\n",
        "[optimize]\nwindow = 0\n",
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        load({}, paths=[f])


def test_explicit_config_must_exist_and_be_readable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found"):
        load({"SLURMOPT_CONFIG": str(missing), "HOME": str(tmp_path)})
    with pytest.raises(ConfigError):
        load({"SLURMOPT_CONFIG": str(tmp_path), "HOME": str(tmp_path)})  # a directory


def test_injected_fault_and_policy_override() -> None:
    with pytest.raises(ConfigError):
        load({"SLURMOPT_OPTSUB_FAULT": "config"})
    assert with_policy(OptsubConfig(), "start").policy == "start"
    assert with_policy(OptsubConfig(), None).policy == "completion"
    with pytest.raises(ConfigError):
        with_policy(OptsubConfig(), "fastest")


def test_a_missing_slurmopt_config_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the user named must exist, for optsub (which then fails open) and the CLI."""
    from slurmopt import config

    env = {"HOME": str(tmp_path), "SLURMOPT_CONFIG": str(tmp_path / "none.toml")}
    with pytest.raises(ConfigError, match="not found"):
        load(env)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SLURMOPT_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="not found"):
        config.load()


def test_search_path_skips_hidden_drop_ins_and_names_the_user_file() -> None:
    from slurmopt.configpath import search_path

    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "/x", "SLURMOPT_CONFIG": "/etc/other.toml"}
    files = search_path(env)
    assert files[0] == ("/etc/slurmopt/slurmopt.toml", False)
    assert files[-2:] == [("/x/slurmopt/slurmopt.toml", False), ("/etc/other.toml", True)]
    assert search_path({"HOME": "/home/u"})[-1] == ("/home/u/.config/slurmopt/slurmopt.toml", False)
