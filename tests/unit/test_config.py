"""The layered configuration: search order, provenance, and errors that name the key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner

from slurmopt import config
from slurmopt.cli.main import cli
from slurmopt.errors import ConfigError


@dataclass(frozen=True)
class Demo:
    mode: Literal["a", "b"] = field(default="a", metadata={"help": "the mode"})
    count: int = 1
    ratio: float = 0.5
    names: tuple[str, ...] = ()
    band: tuple[int, int] = (0, 0)
    speeds: dict[str, float] = field(default_factory=dict)
    path: str | None = None


SECTIONS = {"demo": f"{__name__}:Demo"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_when_no_file(tmp_path: Path) -> None:
    loaded = config.load([tmp_path / "missing.toml"], sections=SECTIONS)
    assert loaded["demo"] == Demo()
    assert all(src == "default" for _, _, src, _ in loaded.items())


def test_layers_override_key_by_key_with_provenance(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", '[demo]\ncount = 2\nnames = ["x"]\n')
    b = write(tmp_path, "b.toml", "[demo]\ncount = 3\nratio = 1\n")
    loaded = config.load([a, b], {"demo.mode": "b"}, sections=SECTIONS)
    d = loaded["demo"]
    assert (d.count, d.names, d.ratio, d.mode) == (3, ("x",), 1.0, "b")
    assert loaded.sources["demo.count"] == str(b)
    assert loaded.sources["demo.names"] == str(a)
    assert loaded.sources["demo.mode"] == "override"
    helps = {k: h for k, _, _, h in loaded.items()}
    assert helps["demo.mode"] == "the mode"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[demo]\ncount = 'x'\n", "count: expected an integer"),
        ("[demo]\ncount = true\n", "count: expected an integer"),
        ("[demo]\nmode = 'c'\n", "mode: must be one of"),
        ("[demo]\nbogus = 1\n", "unknown key 'bogus'"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("[demo]\nband = [1]\n", "band: expected a list of 2 values"),
        ("[demo]\nspeeds = {h100 = 'fast'}\n", "speeds: expected a number"),
        ("[demo\n", "invalid TOML"),
    ],
)
def test_invalid_config_names_file_key_and_reason(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        config.load([p], sections=SECTIONS)
    assert needle in str(err.value)
    assert str(p) in str(err.value)


def test_explicit_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load([], sections=SECTIONS, explicit=[tmp_path / "none.toml"])


def test_search_order(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SLURMOPT_CONFIG": str(tmp_path / "env.toml")}
    paths = config.default_paths(env)
    assert paths[0] == Path("/etc/slurmopt/slurmopt.toml")
    assert paths[-2] == tmp_path / ".config" / "slurmopt" / "slurmopt.toml"
    assert paths[-1] == tmp_path / "env.toml"


def test_controller_section_validates(tmp_path: Path) -> None:
    p = write(tmp_path, "c.toml", "[controller]\nmode = 'enforce'\nnice_band = [5, 1]\n")
    with pytest.raises(ConfigError, match="nice_band"):
        config.load([p])


def test_config_show_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "c.toml", "[controller]\nmode = 'advise'\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SLURMOPT_CONFIG", raising=False)
    res = CliRunner().invoke(cli, ["config", "show", "--json", "--config", str(p)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["controller.mode"] == {
        "value": "advise",
        "source": str(p),
        "help": data["controller.mode"]["help"],
    }
    assert data["controller.max_moves_per_cycle"]["source"] == "default"


def test_config_check_cli_error_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "c.toml", "[controller]\nmode = 'chaos'\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    res = CliRunner().invoke(cli, ["config", "check", "--config", str(p)])
    assert res.exit_code == ConfigError.exit_code
    assert "mode" in res.output and str(p) in res.output


def test_etc_example_lists_every_option_with_its_default(tmp_path: Path) -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    text = (root / "etc" / "slurmopt.toml").read_text()
    assert text == config.example_toml(), "regenerate: slurmopt config example > etc/slurmopt.toml"
    option = re.compile(r"^# ([a-z_][a-z0-9_]*) = ")
    uncommented = "\n".join(line[2:] if option.match(line) else line for line in text.splitlines())
    p = write(tmp_path, "all.toml", uncommented)
    loaded = config.load([p])
    defaults = config.load([])
    keys = [k for k, _, _, _ in defaults.items()]
    assert keys and all(loaded.sources[k] == str(p) for k in keys)
    assert loaded.sections == defaults.sections
