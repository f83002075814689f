"""The ``slurmopt`` command group.

Subcommands are imported lazily, so ``slurmopt --help`` and fast commands do
not pay for the optimizer's or the database's imports.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from slurmopt import __version__
from slurmopt.errors import MissingExtra, SlurmoptError
from slurmopt.extras import missing_extra

# name -> "module:attribute" of a click.Command. Keep sorted.
COMMANDS: dict[str, str] = {
    "alerts": "slurmopt.cli.alerts:alerts",
    "config": "slurmopt.cli.config_cmd:config_group",
    "controller": "slurmopt.cli.controller:controller",
    "db": "slurmopt.cli.db:db_group",
    "exporter": "slurmopt.cli.exporter:exporter",
    "health": "slurmopt.cli.health:health",
    "ingest": "slurmopt.cli.ingest:ingest_group",
    "plan": "slurmopt.cli.plan:plan",
    "probe": "slurmopt.cli.probe:probe",
    "report": "slurmopt.cli.report:report",
    "simulate": "slurmopt.cli.simulate:simulate",
    "snapshot": "slurmopt.cli.snapshot:snapshot",
    "why": "slurmopt.cli.why:why",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            err = missing_extra(exc, f"slurmopt {cmd_name}")
            if err is None:
                raise
            return _needs_extra(cmd_name, err)
        assert isinstance(cmd, click.Command)
        return cmd

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SlurmoptError as exc:
            # one line: a driver's multi-line message (PostgreSQL's hint) is joined
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            click.echo(f"slurmopt: error: {'; '.join(lines)}", err=True)
            sys.exit(exc.exit_code)
        except ImportError as exc:
            err = missing_extra(exc, f"slurmopt {ctx.invoked_subcommand or ''}".rstrip())
            if err is None:
                raise
            click.echo(f"slurmopt: error: {err}", err=True)
            sys.exit(err.exit_code)


def _needs_extra(name: str, err: MissingExtra) -> click.Command:
    """A stand-in for a command whose module needs an extra: listed, and says so when run."""

    def fail() -> None:
        click.echo(f"slurmopt: error: {err}", err=True)
        sys.exit(err.exit_code)

    return click.Command(
        name,
        callback=fail,
        help=str(err),
        short_help="(not installed: " + str(err).rsplit(": ", 1)[-1] + ")",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="slurmopt")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """slurmopt: GPU-aware job placement for Slurm."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
