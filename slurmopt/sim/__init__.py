"""slurmopt.sim."""
