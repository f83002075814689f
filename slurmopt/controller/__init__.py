"""slurmopt.controller."""
