"""``python -m slurmopt``: the ``slurmopt`` command without its console script."""

from slurmopt.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="slurmopt")
