"""Which optional extra provides which module, and the one-line error that says so.

``pip install slurmopt`` is what a login node needs (optsub and the CLI basics);
the rest comes with extras (pyproject.toml):

* ``[controller]``: the history database (SQLAlchemy, Alembic), the solvers
  (NumPy, SciPy/HiGHS, DEAP, simanneal), the simulator, the exporter;
* ``[reports]``: plots in HTML reports (Matplotlib) and the history database;
* ``[gpu]``: GPU node probes (nvidia-ml-py, psutil) and ``exporter --probe``;
* ``[postgresql]``, ``[pyslurm]``.
"""

from __future__ import annotations

from slurmopt.errors import MissingExtra

EXTRA_OF: dict[str, str] = {
    "alembic": "controller",
    "deap": "controller",
    "numpy": "controller",
    "prometheus_client": "controller",
    "scipy": "controller",
    "simanneal": "controller",
    "sqlalchemy": "controller",
    "matplotlib": "reports",
    "psutil": "gpu",
    "pynvml": "gpu",
    "psycopg": "postgresql",
    "pyslurm": "pyslurm",
}
"""Top-level module -> the extra that installs it."""


def missing_extra(exc: ImportError, what: str = "this command") -> MissingExtra | None:
    """The :class:`MissingExtra` for a failed import of an extra's module, else None."""
    top = (exc.name or "").split(".", 1)[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return MissingExtra(
        f"{what} needs {top}, from the [{extra}] extra: pip install 'slurmopt[{extra}]'"
    )
