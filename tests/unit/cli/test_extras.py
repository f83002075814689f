"""A command whose optional extra is missing says which one to install (one line, exit 11)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from slurmopt.extras import EXTRA_OF, missing_extra

ROOT = Path(__file__).resolve().parents[3]


def _run_without(module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``slurmopt ARGV`` in a fresh interpreter where ``module`` cannot be imported."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None\n"
        "from slurmopt.cli.main import cli\n"
        "cli(sys.argv[1:], prog_name='slurmopt')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("sqlalchemy", ("why", "1"), "controller"),
        ("psutil", ("probe", "--no-slurm"), "gpu"),
        (
            "simanneal",
            (
                "plan",
                "--policy",
                "sa",
                "--snapshot",
                str(ROOT / "tests/data/optimize/snapshot_hetero.json"),
            ),
            "controller",
        ),
    ],
)
def test_missing_extra_is_named(module: str, argv: tuple[str, ...], extra: str) -> None:
    res = _run_without(module, *argv)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"pip install 'slurmopt[{extra}]'" in lines[0]


def test_a_command_module_that_cannot_import_is_listed_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "needsplot.py").write_text(
        "import matplotlib\nimport click\n\n@click.command()\ndef cmd() -> None:\n    pass\n"
    )
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from slurmopt.cli import main\n"
        "main.COMMANDS['plotty'] = 'needsplot:cmd'\n"
        "main.cli(sys.argv[1:], prog_name='slurmopt')\n"
    )

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = run("--help")
    assert listed.returncode == 0 and "slurmopt[reports]" in listed.stdout
    ran = run("plotty", "--anything")
    assert ran.returncode == 11
    assert ran.stderr.strip() == (
        "slurmopt: error: slurmopt plotty needs matplotlib, from the [reports] extra:"
        " pip install 'slurmopt[reports]'"
    )


def test_every_mapped_module_is_in_its_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dist = {"pynvml": "nvidia-ml-py", "prometheus_client": "prometheus-client"}
    for module, extra in EXTRA_OF.items():
        name = dist.get(module, module)
        assert any(req.startswith(name) for req in extras[extra]), (module, extra)
    base = " ".join(project["dependencies"])
    assert "scipy" not in base and "matplotlib" not in base and "numpy" not in base


def test_unknown_modules_are_not_blamed_on_an_extra() -> None:
    assert missing_extra(ModuleNotFoundError("x", name="not_a_dependency")) is None
