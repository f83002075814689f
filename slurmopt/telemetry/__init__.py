"""slurmopt.telemetry."""
