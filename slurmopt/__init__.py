"""slurmopt: GPU-aware job placement for Slurm."""

__version__ = "0.1.0"
