"""slurmopt.history."""
