"""Small pure parsers for the value formats Slurm prints, shared by every version adapter.

* numbers: plain ints (22.05) or ``{"set", "infinite", "number"}`` objects (23.02+);
* durations: ``2-00:00:00``, ``01:00:00``, ``30`` (minutes), ``UNLIMITED``;
* memory: ``8000``, ``8000M``, ``8G``, ``UNLIMITED``;
* GRES / TRES strings: ``gpu:a100:4(S:0-1)``, ``gpu:a100:2(IDX:0-1,3)``,
  ``gres:gpu:a100:2`` (22.05) and ``gres/gpu:a100:2`` (23.02+), ``gres/gpu=1``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from slurmopt.errors import SlurmParseError

INFINITE = object()
"""Marker returned by :func:`num` for Slurm's "infinite" numbers."""

_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "NONE", "N/A", "(NULL)", ""})


def num(value: Any) -> Any:
    """Unwrap a Slurm number: ``5`` -> 5, ``{"set": true, "number": 5}`` -> 5.

    Returns None when unset (or JSON null), :data:`INFINITE` when infinite.
    """
    if isinstance(value, Mapping):
        if value.get("infinite"):
            return INFINITE
        if not value.get("set", True):
            return None
        return value.get("number")
    return value


def opt_int(value: Any, *, zero_is_none: bool = False) -> int | None:
    """An int or None (unset, infinite, or 0 when ``zero_is_none``)."""
    v = num(value)
    if v is None or v is INFINITE:
        return None
    try:
        i = int(v)
    except (TypeError, ValueError) as exc:
        raise SlurmParseError(f"expected a number, got {value!r}") from exc
    if zero_is_none and i == 0:
        return None
    return i


def int_or(value: Any, default: int) -> int:
    """An int, or ``default`` when unset or infinite."""
    v = opt_int(value)
    return default if v is None else v


def minutes_to_s(value: Any) -> int | None:
    """A Slurm minutes field (time limits) in seconds; None when unset or infinite.

    Slurm writes "no limit" as null (22.05), ``infinite`` (23.02+) or
    4294967294/4294967295 (NO_VAL / INFINITE in raw structures).
    """
    v = opt_int(value)
    if v is None or v >= 0xFFFFFFFE:
        return None
    return v * 60


def nonempty(value: Any) -> str | None:
    """A string field with Slurm's "nothing" spellings mapped to None."""
    if value is None:
        return None
    s = str(value).strip()
    if s.upper() in ("", "(NULL)", "N/A", "NONE"):
        return None
    return s


def str_list(value: Any) -> tuple[str, ...]:
    """A list field that is a JSON list (23.02+) or a comma string (22.05)."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(x) for x in value if str(x))
    s = nonempty(value)
    return tuple(x.strip() for x in s.split(",") if x.strip()) if s else ()


def epoch(value: Any) -> int | None:
    """An epoch-seconds field; 0 and unset become None."""
    return opt_int(value, zero_is_none=True)


_DURATION = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def _duration_s(text: str) -> int | None:
    """Seconds of ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``; None if not one."""
    m = _DURATION.match(text)
    if not m:
        return None
    days, a, b, c = m.groups()
    if days is not None:
        h, mi, sec = int(a), int(b or 0), int(c or 0)
        return ((int(days) * 24 + h) * 60 + mi) * 60 + sec
    if c is not None:
        return (int(a) * 60 + int(b)) * 60 + int(c)
    if b is not None:
        return int(a) * 60 + int(b)
    return int(a) * 60


def parse_duration(text: str | None) -> int | None:
    """A duration as Slurm prints it (and as the cluster spec writes it), in seconds.

    Accepted: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``; None for
    ``UNLIMITED`` / ``INFINITE`` / ``NONE`` / ``N/A`` (any case). ``0`` is 0 seconds.

    Raises:
        SlurmParseError: anything else.
    """
    if text is None or text.strip().upper() in _UNLIMITED:
        return None
    seconds = _duration_s(text.strip())
    if seconds is None:
        raise SlurmParseError(f"bad Slurm duration {text!r}")
    return seconds


def parse_time_option(value: str) -> int | None:
    """A time limit as sbatch reads ``-t/--time``, in seconds as slurmctld stores it.

    sbatch's own rules (checked against the real sbatch, tests/unit/slurm/test_rules.py):
    ``0``, ``-1``, ``infinite`` and ``unlimited`` (any case) mean no limit (None);
    ``D-`` is ``D`` days; seconds round up to whole minutes (``0:30`` is 60 s);
    surrounding blanks, decimals and anything else are rejected.

    Raises:
        ValueError: a value sbatch rejects ("Invalid --time specification").
    """
    if value.lower() in ("-1", "infinite", "unlimited"):
        return None
    seconds = _duration_s(value + "0" if value.endswith("-") else value)
    if seconds is None:
        raise ValueError(f"bad time {value!r}")
    return None if seconds == 0 else -(-seconds // 60) * 60


def format_duration(seconds: float | None) -> str:
    """Seconds (rounded) as Slurm prints a duration, ``[D-]HH:MM:SS``; None or inf: ``UNLIMITED``.

    The one duration formatter (cluster specs, slurm.conf, optsub's and the planner's texts).
    """
    if seconds is None or math.isinf(seconds):
        return "UNLIMITED"
    d, rem = divmod(round(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    hms = f"{h:02d}:{m:02d}:{s:02d}"
    return f"{d}-{hms}" if d else hms


# Memory units in MiB; K rounds up to a whole MiB as Slurm's str_to_mbytes does.
_MEM_MIB = {"K": 0, "": 1, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3}
_MEM = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)B?$", re.IGNORECASE)
_MEM_OPTION = re.compile(r"^\s*(\d+)([KMGT]?)B?$", re.IGNORECASE)


def _mib(number: float, unit: str) -> int:
    if unit == "K":
        return math.ceil(number / 1024)
    return math.ceil(number * _MEM_MIB[unit])


def parse_mem_mb(text: str | None) -> int | None:
    """A memory size as Slurm prints it, in MiB (no suffix means MiB); None for UNLIMITED / 0.

    Decimals are accepted (Slurm prints ``mem=1.50G`` in TRES strings); ``K`` rounds
    up to a whole MiB (``1K`` is 1 MiB, never "unlimited").

    Raises:
        SlurmParseError: not a memory size.
    """
    if text is None or text.strip().upper() in _UNLIMITED:
        return None
    m = _MEM.match(text.strip())
    if not m:
        raise SlurmParseError(f"bad Slurm memory size {text!r}")
    return _mib(float(m.group(1)), m.group(2).upper()) or None


def parse_mem_option(value: str) -> int:
    """A memory size as sbatch reads ``--mem``/``--mem-per-cpu``/``--mem-per-gpu``, in MiB.

    sbatch's own rules (checked against the real sbatch): an integer with an optional
    ``K``/``M``/``G``/``T`` (any case) and an optional ``B``; no suffix means MiB; ``K``
    rounds up (``1025K`` is 2 MiB); leading blanks are allowed; ``0`` is 0 (for
    ``--mem``: all the memory of the node). Decimals, ``P`` and ``MiB`` are rejected.

    Raises:
        ValueError: a value sbatch rejects ("Invalid --mem specification").
    """
    m = _MEM_OPTION.match(value)
    if not m:
        raise ValueError(f"bad memory size {value!r}")
    return _mib(int(m.group(1)), m.group(2).upper())


def parse_tres_str(text: str | None) -> dict[str, str]:
    """``cpu=2,mem=2000M,node=1,gres/gpu=2`` -> ``{"cpu": "2", "mem": "2000M", ...}``."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        key, sep, val = item.partition("=")
        if sep and key.strip():
            out[key.strip()] = val.strip()
    return out


# -- GRES ------------------------------------------------------------------------

_GRES_SPLIT = re.compile(r",(?=[^,()]+:)")
"""Split several GRES at commas that start a new ``name:...`` item (IDX lists hold commas)."""


def split_gres(text: str | None) -> list[str]:
    """``gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:0)`` -> its two items."""
    s = nonempty(text)
    if s is None:
        return []
    return [x.strip() for x in _GRES_SPLIT.split(s) if x.strip()]


def parse_idx(text: str) -> tuple[int, ...]:
    """``0-1,3`` -> (0, 1, 3); ``N/A`` -> ()."""
    s = text.strip()
    if s.upper() in ("N/A", ""):
        return ()
    out: list[int] = []
    for part in s.split(","):
        lo, sep, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError as exc:
            raise SlurmParseError(f"bad GRES index list {text!r}") from exc
    return tuple(out)


def parse_gres_item(item: str) -> tuple[str, str, int, tuple[int, ...]] | None:
    """One GRES item -> (name, type, count, indexes); None if not countable.

    ``gpu:a100:2(IDX:0-1)`` -> ("gpu", "a100", 2, (0, 1)); ``gpu:4(S:0)`` -> ("gpu", "", 4, ());
    ``gres/gpu:h100:1`` and ``gres:gpu:h100:1`` and ``gres/gpu=1`` are understood too.
    """
    s = item.strip()
    idx: tuple[int, ...] = ()
    paren = s.find("(")
    if paren >= 0:
        inner = s[paren + 1 : s.rfind(")") if ")" in s else len(s)]
        s = s[:paren]
        if inner.upper().startswith("IDX:"):
            idx = parse_idx(inner[4:])
    if s.startswith(("gres/", "gres:")):
        s = s[5:]
    name_type, eq, count_s = s.partition("=")
    parts = [*name_type.split(":"), count_s] if eq else s.split(":")
    if not parts or not parts[0]:
        return None
    name = parts[0]
    if len(parts) == 1:
        return (name, "", 1, idx)
    count_txt = parts[-1]
    gtype = ":".join(parts[1:-1])
    if not count_txt.isdigit():
        # "gpu:a100" (type without count) means one.
        if len(parts) == 2:
            return (name, count_txt, 1, idx)
        return None
    return (name, gtype, int(count_txt), idx)


def gpus_by_type(text: str | None) -> dict[str, int]:
    """GPU counts per type in a GRES string (``""`` = untyped); other GRES are ignored."""
    out: dict[str, int] = {}
    for item in split_gres(text):
        parsed = parse_gres_item(item)
        if parsed is None or parsed[0] != "gpu":
            continue
        _, gtype, count, _ = parsed
        out[gtype] = out.get(gtype, 0) + count
    return out


def gpu_indexes(text: str | None) -> tuple[int, ...]:
    """All GPU indexes named in a ``gres_detail`` / ``gres_used`` string, sorted."""
    idx: set[int] = set()
    for item in split_gres(text):
        parsed = parse_gres_item(item)
        if parsed is not None and parsed[0] == "gpu":
            idx.update(parsed[3])
    return tuple(sorted(idx))


def gpu_request(text: str | None) -> tuple[int, str | None]:
    """A job's GPU request in one TRES-per-X string -> (count, type or None).

    ``gres/gpu:a100:2`` -> (2, "a100"); ``gres:gpu:4`` -> (4, None);
    ``cpu=2,gres/gpu=1`` -> (1, None); ``""`` -> (0, None).
    Several typed GPU items (rare) add up; the first type wins.
    """
    total = 0
    gtype: str | None = None
    for raw_item in (nonempty(text) or "").split(","):
        item = raw_item.strip()
        if not item.startswith(("gres/gpu", "gres:gpu", "gpu")):
            continue
        parsed = parse_gres_item(item)
        if parsed is None or parsed[0] != "gpu":
            continue
        total += parsed[2]
        if parsed[1] and gtype is None:
            gtype = parsed[1]
    return total, gtype


def normalize_tres_spelling(text: str | None) -> str | None:
    """22.05's ``gres:gpu:a100:2`` -> ``gres/gpu:a100:2`` (the 23.02+ spelling); None if empty."""
    s = nonempty(text)
    if s is None:
        return None
    items = [("gres/" + x[5:]) if x.startswith("gres:") else x for x in s.split(",")]
    return ",".join(items)
