"""Slurm hostlist expressions: ``gpu-a[1-2,4],cpu[01-03]`` <-> a list of names.

Slurm writes node sets in a compressed form: a prefix, then a bracketed list of
numbers and ranges (zero padding is kept: ``[01-03]`` gives ``01 02 03``), then
an optional suffix, possibly with several bracket groups in one name
(``rack[1-2]-n[1-2]``). Commas separate hostlists only outside brackets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")

MAX_EXPANSION = 1_000_000
"""Refuse expressions that would expand to more names than this (a typo guard)."""


def split_top_level(expr: str) -> list[str]:
    """Split ``expr`` on commas that are not inside brackets.

    Raises:
        ValueError: unbalanced brackets.
    """
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in expr:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {expr!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '[' in hostlist {expr!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _expand_ranges(body: str, expr: str) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        m = _RANGE.match(item.strip())
        if not m:
            raise ValueError(f"bad range {item!r} in hostlist {expr!r}")
        lo_s, hi_s = m.group(1), m.group(2)
        if hi_s is None:
            out.append(lo_s)
            continue
        lo, hi = int(lo_s), int(hi_s)
        if hi < lo:
            raise ValueError(f"descending range {item!r} in hostlist {expr!r}")
        if hi - lo + 1 > MAX_EXPANSION:
            raise ValueError(f"range {item!r} too large in hostlist {expr!r}")
        width = len(lo_s) if lo_s.startswith("0") and len(lo_s) > 1 else 0
        out.extend(str(i).zfill(width) for i in range(lo, hi + 1))
    return out


def _expand_one(name: str, expr: str) -> list[str]:
    start = name.find("[")
    if start < 0:
        if "]" in name:
            raise ValueError(f"unbalanced ']' in hostlist {expr!r}")
        return [name]
    end = name.find("]", start)
    if end < 0:
        raise ValueError(f"unbalanced '[' in hostlist {expr!r}")
    prefix, body, rest = name[:start], name[start + 1 : end], name[end + 1 :]
    tails = _expand_one(rest, expr) if rest else [""]
    out = [prefix + num + tail for num in _expand_ranges(body, expr) for tail in tails]
    if len(out) > MAX_EXPANSION:
        raise ValueError(f"hostlist {expr!r} expands to too many names")
    return out


def expand(expr: str | None) -> list[str]:
    """Expand a Slurm hostlist expression into names, in order, duplicates kept once.

    ``""``, ``None`` and ``"(null)"`` give ``[]``.

    Raises:
        ValueError: a malformed expression (unbalanced brackets, bad range).
    """
    if expr is None:
        return []
    expr = expr.strip()
    if expr in ("", "(null)"):
        return []
    seen: dict[str, None] = {}
    for part in split_top_level(expr):
        for name in _expand_one(part, expr):
            seen.setdefault(name, None)
    return list(seen)


_TAIL_NUM = re.compile(r"^(.*?)(\d+)$")


def compress(names: Iterable[str]) -> str:
    """Write names as a compact hostlist (numeric suffixes only; order by prefix, then number).

    ``compress(expand(x))`` names the same set as ``x``.
    """
    groups: dict[str, list[str]] = {}
    plain: list[str] = []
    for name in dict.fromkeys(names):
        m = _TAIL_NUM.match(name)
        if m:
            groups.setdefault(m.group(1), []).append(m.group(2))
        else:
            plain.append(name)
    parts = list(plain)
    for prefix, nums in groups.items():
        nums.sort(key=lambda s: (int(s), len(s)))
        ranges: list[str] = []
        i = 0
        while i < len(nums):
            j = i
            while (
                j + 1 < len(nums)
                and int(nums[j + 1]) == int(nums[j]) + 1
                and len(nums[j + 1]) == len(nums[i])
            ):
                j += 1
            ranges.append(nums[i] if i == j else f"{nums[i]}-{nums[j]}")
            i = j + 1
        if len(nums) == 1:
            parts.append(prefix + nums[0])
        else:
            parts.append(f"{prefix}[{','.join(ranges)}]")
    return ",".join(parts)
