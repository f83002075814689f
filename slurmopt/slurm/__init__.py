"""slurmopt.slurm."""
