"""slurmopt.optimize."""
