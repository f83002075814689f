"""Click commands only; nothing below ``slurmopt.cli`` imports Click."""
