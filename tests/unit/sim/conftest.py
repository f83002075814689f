"""Shared fixtures for the simulator tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
KTH = SHARED / "traces" / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf"
ALIBABA = SHARED / "traces" / "alibaba_gpu_v2023"


@pytest.fixture
def kth_path() -> Path:
    if not KTH.exists():
        pytest.skip(f"{KTH} not present")
    return KTH


@pytest.fixture
def alibaba_dir() -> Path:
    if not ALIBABA.exists():
        pytest.skip(f"{ALIBABA} not present")
    return ALIBABA
