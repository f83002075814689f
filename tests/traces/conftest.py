"""Checks over the full real traces in ``../shared/traces`` (beside the checkout).

The unit tests use small samples under ``tests/data``; these tests need the full
files. Without them a test is skipped with the path it looked for, or fails
when ``CI=true`` (CI runs with ``../shared`` beside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
KTH = SHARED / "traces" / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf"
ALIBABA = SHARED / "traces" / "alibaba_gpu_v2023"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
        pytest.fail(f"{path} not present (CI=true: full-trace checks must run)", pytrace=False)
    pytest.skip(f"{path} not present")


@pytest.fixture
def kth_path() -> Path:
    return _require(KTH)


@pytest.fixture
def alibaba_dir() -> Path:
    return _require(ALIBABA)
