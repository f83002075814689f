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


def build_collector(
    db_url: str | None, *, no_slurm: bool, no_db: bool, refresh_s: float, probe: bool = False
) -> Any:
    """The collector with every available source."""
    from slurmopt.telemetry.exporter import SlurmoptCollector, Sources, controller_stats_from_db

    sources = Sources()
    if not no_slurm:
        from slurmopt.slurm.backend import get_backend

        backend = get_backend()
        sources.snapshot = backend.snapshot
    if not no_db:
        from slurmopt.cli.db import engine_for
        from slurmopt.telemetry.store import HistoryStore

        engine = engine_for(db_url)
        store = HistoryStore(engine, check=False)
        sources.points = store.points_since
        sources.controller = lambda: controller_stats_from_db(engine)
    if probe:
        sources.local_points = _local_points(no_slurm=no_slurm)
    return SlurmoptCollector(sources, refresh_s=refresh_s)


def _local_points(*, no_slurm: bool) -> Any:
    """A source that probes this node (GPUs mapped to jobs unless ``no_slurm``)."""
    from dataclasses import replace

    from slurmopt.telemetry.config import load_telemetry_config
    from slurmopt.telemetry.probe import run_probe
    from slurmopt.telemetry.store import points_from_probe

    cfg = replace(load_telemetry_config().probe(), xid_wait_ms=0, with_host=False)

    def read() -> list[Any]:
        from slurmopt.telemetry.push import jobs_from_slurm

        jobs = None if no_slurm else jobs_from_slurm()
        return points_from_probe(run_probe(config=cfg, jobs=jobs))

    return read


def serve(listen: str, collector: Any) -> tuple[Any, threading.Thread]:
    """Start the HTTP server in a daemon thread; returns (server, thread)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(collector)
    addr, port = parse_listen(listen)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return server, thread


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
    collector = build_collector(
        db_url, no_slurm=no_slurm, no_db=no_db, refresh_s=refresh, probe=probe
    )
    server, thread = serve(listen, collector)
    click.echo(f"serving metrics on http://{listen}/metrics", err=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
