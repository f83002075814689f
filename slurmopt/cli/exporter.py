"""``slurmopt exporter --listen ADDR:PORT``: serve Prometheus metrics over HTTP."""

from __future__ import annotations

import logging
import threading
from typing import Any

import click

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[::1]:9100`` for IPv6) -> (addr, port)."""
    addr, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{text!r}: expected ADDR:PORT")
    return addr.strip("[]") or "0.0.0.0", int(port)


def serve(listen: str, collector: Any) -> tuple[Any, threading.Thread]:
    """Serve ``collector`` on ``ADDR:PORT`` (:func:`slurmopt.telemetry.serve.serve`)."""
    from slurmopt.telemetry.serve import serve as start

    addr, port = parse_listen(listen)
    return start(addr, port, collector)


@click.command("exporter")
@click.option("--listen", default="127.0.0.1:9817", show_default=True, help="ADDR:PORT to serve.")
@click.option("--db", "db_url", help="History database URL (default: config, $SLURMOPT_DB_URL).")
@click.option("--no-slurm", is_flag=True, help="Do not read Slurm (GPU and controller only).")
@click.option("--no-db", is_flag=True, help="Do not read the history database.")
@click.option(
    "--probe",
    is_flag=True,
    help="Also probe this node's GPUs at each refresh (a per-node exporter; no database needed).",
)
@click.option(
    "--refresh",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds between two reads of the sources.",
)
def exporter(
    listen: str, db_url: str | None, no_slurm: bool, no_db: bool, probe: bool, refresh: float
) -> None:
    """Serve Prometheus metrics: queue, free GPUs, predicted wait, GPU telemetry, controller."""
    from slurmopt.telemetry.serve import build_collector

    collector = build_collector(
        db_url, no_slurm=no_slurm, no_db=no_db, refresh_s=refresh, probe=probe
    )
    server, thread = serve(listen, collector)
    click.echo(f"serving metrics on http://{listen}/metrics", err=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
