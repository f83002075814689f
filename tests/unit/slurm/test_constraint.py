"""slurmopt.slurm.constraint: the one --constraint evaluator (optsub and the controller)."""

from __future__ import annotations

import pytest

from slurmopt.slurm import constraint

from .rules_tables import A100_FEATURES, CONSTRAINT_ON_A100


@pytest.mark.parametrize(("expr", "ok"), CONSTRAINT_ON_A100)
def test_constraint_on_an_a100_node(expr: str, ok: bool | None) -> None:
    parsed = constraint.parse(expr)
    if ok is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed.matches(A100_FEATURES) is ok


@pytest.mark.parametrize(
    ("expr", "feats", "active", "ok"),
    [
        ("ib", ("ib", "avx"), (), True),
        ("ib&avx512", ("ib", "avx"), (), False),
        ("ib|opa", ("opa",), (), True),
        ("ib|opa", ("eth",), (), False),
        ("[rack1|rack2]", ("eth",), (), False),  # brackets are evaluated, not ignored
        ("gpu*2", (), (), False),
        ("knl&flat", ("knl",), ("flat",), True),  # features and active_features together
        ("flat", (), ("flat",), True),
    ],
)
def test_features_and_active_features(
    expr: str, feats: tuple[str, ...], active: tuple[str, ...], ok: bool
) -> None:
    parsed = constraint.parse(expr)
    assert parsed is not None and parsed.matches(feats, active) is ok


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_no_constraint(empty: str | None) -> None:
    assert constraint.parse(empty) is None
