"""Slurm's ``--constraint`` expressions: the one evaluator (optsub and the controller).

Semantics, checked against the real slurmctld (``sbatch --test-only -C``;
tests/slurm/test_rules_sbatch.py):

* ``&`` and ``,`` are AND, ``|`` is OR, evaluated **left to right without
  precedence**, as Slurm does: ``ampere|hopper&turing`` is
  ``(ampere|hopper)&turing``;
* ``(...)`` and ``[...]`` group (a matching OR ``[a|b]`` is an OR for one node);
* counts (``a*2``) constrain how many nodes, not which: ignored here;
* a node offers its ``features`` and its ``active_features`` (a feature a node can be
  rebooted into satisfies the constraint, as in Slurm).

An expression this module cannot read (``!``, blanks, unbalanced brackets,
stray operators) gives None from :func:`parse`: the caller then does not filter on it
and Slurm decides. Standard library only (optsub's submit path imports it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

_TOKEN = re.compile(r"(?:([A-Za-z0-9_.:\-+/=]+)|([&|,()\[\]])|(\*\d+))")
_CLOSE = {"(": ")", "[": "]"}

# A parsed expression: a feature name, or (op, left, right) with op "&" or "|".
Expr = str | tuple[str, "Expr", "Expr"]


class Constraint(NamedTuple):
    """A parsed ``--constraint``; :meth:`matches` tests one node's features (a NamedTuple:
    cheap to define on optsub's submit path)."""

    text: str
    expr: Expr

    def matches(self, features: Iterable[str], active_features: Iterable[str] = ()) -> bool:
        """Whether a node with these (available and active) features satisfies it."""
        return _eval(self.expr, {*features, *active_features})


def _eval(expr: Expr, feats: set[str]) -> bool:
    if isinstance(expr, str):
        return expr in feats
    op, left, right = expr
    if op == "&":
        return _eval(left, feats) and _eval(right, feats)
    return _eval(left, feats) or _eval(right, feats)


def _tokens(text: str) -> list[str] | None:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return None
        name, op, _count = m.groups()
        if name is not None or op is not None:
            out.append(name if name is not None else ("&" if op == "," else op))
        pos = m.end()
    return out


def _group(toks: list[str], i: int, close: str | None) -> tuple[Expr, int]:
    """A left-to-right chain of operands up to ``close`` (or the end); returns it and the index."""
    expr, i = _operand(toks, i)
    while i < len(toks) and toks[i] in "&|":
        op = toks[i]
        right, i = _operand(toks, i + 1)
        expr = (op, expr, right)
    if close is None:
        if i != len(toks):
            raise ValueError("trailing tokens")
        return expr, i
    if i >= len(toks) or toks[i] != close:
        raise ValueError("unbalanced")
    return expr, i + 1


def _operand(toks: list[str], i: int) -> tuple[Expr, int]:
    if i >= len(toks):
        raise ValueError("missing operand")
    t = toks[i]
    if t in _CLOSE:
        return _group(toks, i + 1, _CLOSE[t])
    if t in "&|)]":
        raise ValueError(f"unexpected {t!r}")
    return t, i + 1


def parse(text: str | None) -> Constraint | None:
    """``--constraint`` text as a :class:`Constraint`; None when empty or unreadable."""
    if not text or not text.strip():
        return None
    toks = _tokens(text)
    if not toks:
        return None
    try:
        expr, _ = _group(toks, 0, None)
    except ValueError:
        return None
    return Constraint(text, expr)
