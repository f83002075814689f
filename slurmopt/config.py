"""Layered TOML configuration with provenance.

Search order (later layers override earlier ones, key by key):

1. package defaults (the dataclass defaults below);
2. ``/etc/slurmopt/slurmopt.toml``;
3. drop-ins ``/etc/slurmopt/conf.d/*.toml`` in name order;
4. the user's ``$XDG_CONFIG_HOME/slurmopt/slurmopt.toml`` (``~/.config/...``);
5. ``$SLURMOPT_CONFIG`` (a file path; it must exist);

(files 2-5: :mod:`slurmopt.configpath`, the one search path, shared with optsub);
6. explicit overrides (command-line flags), ``{"section.key": value}``.

Each section is a frozen dataclass owned by the module that uses it; this
module only knows how to fill them. Every field carries its help text in
``metadata["help"]``. An invalid file, unknown key or wrong type raises
:class:`~slurmopt.errors.ConfigError` naming the file, the key and the reason.

Standard library only: optsub reads its configuration on the submit path.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from slurmopt import configpath
from slurmopt.errors import ConfigError
from slurmopt.fsutil import read_toml, writable_by_others
from slurmopt.lazylog import get_logger

log = get_logger(__name__)

_T = TypeVar("_T")

# section name -> "module:DataclassName". Sections are imported only when used.
SECTIONS: dict[str, str] = {
    "controller": "slurmopt.controller.config:ControllerConfig",
    "history": "slurmopt.history.config:HistoryConfig",
    "optimize": "slurmopt.optimize.config:OptimizeConfig",
    "optsub": "slurmopt.optsub.config:OptsubConfig",
    "telemetry": "slurmopt.telemetry.config:TelemetryConfig",
}


def default_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    """The files searched, in order (:func:`slurmopt.configpath.search_path`)."""
    return [Path(p) for p, _ in configpath.search_path(env)]


@dataclass(frozen=True)
class Loaded:
    """The effective configuration: one dataclass per section, and where each value came from."""

    sections: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    """``"section.key"`` -> ``"default"``, a file path, or ``"override"``."""

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    def items(self) -> Iterable[tuple[str, Any, str, str]]:
        """Yield ``(dotted key, value, source, help)`` for every field of every section."""
        for name, obj in self.sections.items():
            for f in dataclasses.fields(obj):
                key = f"{name}.{f.name}"
                yield key, getattr(obj, f.name), self.sources.get(key, "default"), _help(f)


def load(
    paths: Sequence[Path] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    sections: Mapping[str, str] | None = None,
    explicit: Sequence[Path] = (),
) -> Loaded:
    """Read every layer and build the section dataclasses.

    Args:
        paths: files to read in order (default :func:`default_paths`); missing ones are skipped.
        overrides: ``{"section.key": value}`` applied last (command-line flags).
        sections: section registry (default :data:`SECTIONS`); tests pass their own.
        explicit: files that must exist (e.g. ``--config FILE``), read after ``paths``.

    Raises:
        ConfigError: unreadable or invalid TOML, unknown section or key, wrong type.
    """
    registry = SECTIONS if sections is None else sections
    merged: dict[str, dict[str, Any]] = {name: {} for name in registry}
    sources: dict[str, str] = {}
    if paths is None:
        files = [(Path(p), req) for p, req in configpath.search_path()]
    else:
        files = [(p, False) for p in paths]
    files += [(p, True) for p in explicit]
    for path, required in files:
        if os.geteuid() == 0:
            why = writable_by_others(path)
            if why:  # a user's file must never steer anything run as root (docs/security.md)
                if required:
                    raise ConfigError(f"{path}: refused as root: {why}")
                log.warning("config file %s not read (running as root): %s", path, why)
                continue
        data = read_toml(path, required=required)
        for sec, table in data.items():
            if sec not in registry:
                raise ConfigError(
                    f"{path}: unknown section [{sec}] (known: {', '.join(sorted(registry))})"
                )
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [{sec}] must be a table")
            for key, value in table.items():
                merged[sec][key] = value
                sources[f"{sec}.{key}"] = str(path)
    for dotted, value in (overrides or {}).items():
        sec, _, key = dotted.partition(".")
        if sec not in registry:
            raise ConfigError(f"override {dotted}: unknown section {sec!r}")
        merged[sec][key] = value
        sources[dotted] = "override"
    built = {
        name: build_section(_section_class(target), merged[name], where=name, sources=sources)
        for name, target in registry.items()
    }
    return Loaded(built, sources)


def _section_class(target: str) -> type[Any]:
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"config section {target} is not a dataclass")
    return cls


def _help(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("help", ""))


def build_section(
    cls: type[_T],
    values: Mapping[str, Any],
    *,
    where: str,
    sources: Mapping[str, str] | None = None,
) -> _T:
    """Build one section dataclass from raw TOML values, checking every key and type.

    Raises:
        ConfigError: unknown key or a value of the wrong type (names key, file and reason).
    """
    assert dataclasses.is_dataclass(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        origin = (sources or {}).get(f"{where}.{key}", "")
        at = f"{origin}: " if origin else ""
        if key not in fields:
            raise ConfigError(
                f"{at}[{where}] unknown key {key!r} (known: {', '.join(sorted(fields))})"
            )
        try:
            kwargs[key] = _bounded(key, _coerce(raw, hints[key]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{at}[{where}] {key}: {exc}") from None
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{where}] {exc}") from None
    return obj


MAX_NUMBER = 1e15
"""No configured number is larger in size (a typo like 1e20 is refused, not overflowed)."""
MAX_DURATION_S = 10 * 365 * 86400
"""Durations (keys ending in ``_s``) are at most 10 years."""


def _bounded(key: str, value: Any) -> Any:
    """``value`` with every number in it finite and bounded (durations: at most 10 years).

    Raises:
        ValueError: nan, inf, or a number out of range (the message says which).
    """
    numbers: list[float] = []

    def walk(v: Any) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int | float):
            numbers.append(v)
        elif isinstance(v, tuple | list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    for n in numbers:
        if not math.isfinite(n):
            raise ValueError(f"must be a finite number, not {n!r}")
        if abs(n) > MAX_NUMBER:
            raise ValueError(f"{n!r} is out of range (at most {MAX_NUMBER:g} in size)")
        if key.endswith("_s") and abs(n) > MAX_DURATION_S:
            raise ValueError(
                f"{n!r} s is out of range for a duration (at most {MAX_DURATION_S} s, 10 years)"
            )
    return value


def _coerce(raw: Any, hint: Any) -> Any:  # noqa: PLR0911, PLR0912  one branch per supported type hint (bool, int, float, str, Literal, tuples, dicts, optionals)
    """Check ``raw`` (a TOML value) against a type hint and convert it (lists -> tuples)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return raw
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(raw, arg)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError("; ".join(errors))
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"must be one of {', '.join(map(repr, args))}, not {raw!r}")
        return raw
    if origin is tuple:
        if not isinstance(raw, list | tuple):
            raise TypeError(f"expected a list, got {type(raw).__name__}")
        if (len(args) == 2 and args[1] is Ellipsis) or not args:
            item = args[0] if args else Any
            return tuple(_coerce(x, item) for x in raw)
        if len(raw) != len(args):
            raise ValueError(f"expected a list of {len(args)} values, got {len(raw)}")
        return tuple(_coerce(x, t) for x, t in zip(raw, args, strict=True))
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(raw, dict):
            raise TypeError(f"expected a table, got {type(raw).__name__}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt): _coerce(v, vt) for k, v in raw.items()}
    if hint is bool:
        if not isinstance(raw, bool):
            raise TypeError(f"expected true or false, got {raw!r}")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(f"expected an integer, got {raw!r}")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise TypeError(f"expected a number, got {raw!r}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise TypeError(f"expected a string, got {raw!r}")
        return raw
    if hint is Path:
        if not isinstance(raw, str):
            raise TypeError(f"expected a path string, got {raw!r}")
        return Path(raw)
    raise TypeError(f"unsupported config type {hint!r}")


def example_toml(sections: Mapping[str, str] | None = None) -> str:
    """Every option of every section, commented, with its default (``etc/slurmopt.toml``)."""
    registry = SECTIONS if sections is None else sections
    out = [
        "# slurmopt configuration: every option with its default value.",
        "# Search order (later wins, key by key): package defaults, /etc/slurmopt/slurmopt.toml,",
        "# /etc/slurmopt/conf.d/*.toml, ~/.config/slurmopt/slurmopt.toml, $SLURMOPT_CONFIG,",
        "# command-line flags. `slurmopt config show` prints the effective values and their",
        "# sources; `slurmopt config check` validates. Generated by `slurmopt config example`.",
    ]
    for name in sorted(registry):
        cls = _section_class(registry[name])
        out += ["", f"[{name}]"]
        doc = (cls.__doc__ or "").strip().splitlines()
        if doc:
            out.append(f"# {doc[0]}")
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            for line in _wrap(_help(f)):
                out.append(f"# {line}")
            out.append(f"# {f.name} = {_toml_value(default)}")
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int = 88) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) if text else []


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str | Path):
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items())
        return "{" + (f" {inner} " if inner else "") + "}"
    return repr(v)


def _toml_key(k: Any) -> str:
    import re

    k = str(k)
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)
