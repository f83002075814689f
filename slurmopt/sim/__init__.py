"""slurmopt.sim: trace readers, cluster specs, the event-driven replay and its metrics.

Entry points: :func:`slurmopt.sim.traces.read_trace` (and the per-format
readers), :func:`slurmopt.sim.run.simulate`, :func:`slurmopt.sim.metrics.summarize`.
See ``docs/simulator.md``.
"""
