"""slurmopt.history: what the site remembers.

Submodules (import them explicitly; this package imports nothing heavy, so the
optsub submit path may use :mod:`slurmopt.history.config` without paying for
SQLAlchemy):

* :mod:`~slurmopt.history.config`: where the database is (stdlib only);
* :mod:`~slurmopt.history.orm`: the SQLAlchemy 2.0 typed tables;
* :mod:`~slurmopt.history.db`: engines (SQLite WAL + busy timeout), sessions,
  migrations (``slurmopt db upgrade``), prune and export;
* :mod:`~slurmopt.history.ingest`: controller observations, optsub's spool,
  ``sacct`` final states (idempotent upserts);
* :mod:`~slurmopt.history.predict`: runtime prediction (pure Python);
* :mod:`~slurmopt.history.learn`: speed factors and prediction accuracy;
* :mod:`~slurmopt.history.reports`: the ``slurmopt report`` tables.
"""
