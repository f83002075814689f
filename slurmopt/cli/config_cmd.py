"""``slurmopt config show|check``: the effective configuration and where each value came from."""

from __future__ import annotations

import json
from pathlib import Path

import click

from slurmopt import config


@click.group("config")
def config_group() -> None:
    """Show or check the layered configuration."""


@config_group.command("show")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Extra config file.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def show(config_file: Path | None, as_json: bool) -> None:
    """Print every effective value, its source and its help text."""
    loaded = config.load(explicit=[config_file] if config_file else [])
    rows = list(loaded.items())
    if as_json:
        out = {k: {"value": _jsonable(v), "source": s, "help": h} for k, v, s, h in rows}
        click.echo(json.dumps(out, indent=2))
        return
    for key, value, source, help_text in rows:
        click.echo(f"{key} = {_jsonable(value)!r}    # {source}")
        if help_text:
            click.echo(f"    {help_text}")


@config_group.command("check")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Extra config file.")
def check(config_file: Path | None) -> None:
    """Exit 0 when the configuration is valid; otherwise name the key and the reason.

    Also warns (stderr, exit 0) about files and directories whose owner or mode
    is not what docs/security.md needs (spool 1777, root-only cache, routing
    file, database, config files).
    """
    from slurmopt.install_check import install_warnings

    loaded = config.load(explicit=[config_file] if config_file else [])
    files = sorted({s for s in loaded.sources.values() if s not in ("default", "override")})
    click.echo("configuration is valid" + (f" ({', '.join(files)})" if files else " (defaults)"))
    for line in install_warnings(loaded):  # modes the trust model needs (docs/security.md)
        click.echo(f"warning: {line}", err=True)


def _jsonable(value: object) -> object:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@config_group.command("example")
def example() -> None:
    """Print every option, commented, with its default (the content of etc/slurmopt.toml)."""
    click.echo(config.example_toml(), nl=False)
