"""The exporter's sources and HTTP server (``slurmopt exporter``): Slurm, the history
database, and this node's GPUs, each when asked for."""

from __future__ import annotations

import threading
from typing import Any


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
        from slurmopt.history.db import engine_for
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


def serve(addr: str, port: int, collector: Any) -> tuple[Any, threading.Thread]:
    """Start the HTTP server in a daemon thread; returns (server, thread)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return server, thread
