"""Suite-wide pytest configuration.

Every test under ``tests/slurm/`` gets the ``slurm`` marker automatically (it
needs the real local Slurm testbed: ``scripts/testbed up``), so
``pytest -m "not slurm"`` runs the pure tests only. Whether such a test is
skipped or fails when the testbed is unreachable is decided in
``tests/slurm/conftest.py`` (fails when ``CI=true``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLURM_TESTS_DIR = Path(__file__).resolve().parent / "slurm"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that lives under ``tests/slurm/`` with ``slurm``."""
    for item in items:
        if SLURM_TESTS_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slurm)
