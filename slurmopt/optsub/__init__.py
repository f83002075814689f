"""optsub: the sbatch drop-in (parse, decide, explain, record). Standard library only."""
