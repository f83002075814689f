"""sbatch's command line, ``#SBATCH`` directives and ``SBATCH_*`` variables, as sbatch reads them.

Pure functions, standard library only (optsub imports this on the submit path).

What sbatch does, and this module mirrors (Slurm 22.05 through 26.05,
``src/common/slurm_opt.c`` and ``src/sbatch/opt.c``):

* options are parsed by GNU ``getopt_long`` with the option string starting
  with ``+``: parsing stops at the first non-option argument (the script path;
  everything after it is the script's arguments) or after ``--``. A lone ``:``
  separates the components of a heterogeneous job on the command line;
* long options take ``--name=value`` or ``--name value`` when the value is
  required, only ``--name=value`` when it is optional; a long name may be
  abbreviated to any unique prefix (GNU rule);
* short options may be clustered (``-Hp gpu``, ``-Hpgpu``): a short option
  that takes a value consumes the rest of its token, or the next argument when
  the token ends; an optional value must be attached (``-k`` vs ``-koff``);
* ``#SBATCH`` directives are read from the script's top up to the first
  command line: blank lines and other comments may come before and between
  them. Within a directive, quotes group words, a backslash keeps the next
  character (but does not join words), and an unquoted ``#`` ends the line
  (see :func:`_directive_words`). ``#SBATCH hetjob`` (or ``packjob``) starts
  the next heterogeneous component;
* precedence: directives, then ``SBATCH_*`` environment variables, then the
  command line; the later wins (sbatch's documented rule: command line over
  environment over script). ``SBATCH_<VAR>_HET_GROUP_<n>`` applies to
  component ``n`` only.

Unknown options are never rejected here: they stay in the argv that is
forwarded to sbatch (which decides). ``--unknown=value`` is opaque. The one
real ambiguity is ``--unknown word``: the word may be the option's value or
the script path. This parser then sets :attr:`ParsedArgs.ambiguous` and the
caller must not rewrite anything (optsub forwards the arguments unchanged).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from slurmopt.slurm.sbatch_table import (
    ENV_VARS,
    OPTIONS,
    Arg,
    OptSpec,
    by_long,
    by_short,
    lookup_long,
)

__all__ = [
    "ENV_VARS",
    "OPTIONS",
    "Arg",
    "CommandLine",
    "Component",
    "Occurrence",
    "OptSpec",
    "ParsedArgs",
    "Source",
    "combine",
    "directive_lines",
    "lookup_long",
    "parse",
    "parse_command_line",
    "rewrite",
]


_MEM_FAMILY = ("mem", "mem-per-cpu", "mem-per-gpu")


class Source(enum.StrEnum):
    """Where a setting came from (later sources override earlier ones)."""

    DIRECTIVE = "directive"
    ENV = "env"
    CMDLINE = "cmdline"


class Occurrence(NamedTuple):
    """One option as written somewhere (a NamedTuple: cheap to define on optsub's path)."""

    option: str
    """Canonical long name; for an unknown option the name as written (``--foo``)."""
    value: str | None
    source: Source
    token: int = -1
    """Command line: index (in the forwarded argv) of the token that holds the value."""
    offset: int = 0
    """Command line: where the value starts inside that token."""
    where: str = ""
    """Directive: ``line N``; environment: the variable's name."""
    reset: bool = False
    """An environment flag set to a false value: it clears earlier settings."""


class Component:
    """One job (or one heterogeneous component) with every option in precedence order.

    This module's records are defined on optsub's submit path, where a frozen dataclass
    costs about 0.5 ms per process (issue 16): this one is a plain immutable class (a
    NamedTuple field cannot be called ``index``), the others are NamedTuples.
    """

    __slots__ = ("index", "occurrences")
    index: int
    occurrences: tuple[Occurrence, ...]

    def __init__(self, index: int, occurrences: tuple[Occurrence, ...] = ()) -> None:
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "occurrences", occurrences)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Component) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.index, self.occurrences) == (other.index, other.occurrences)

    def __hash__(self) -> int:
        return hash((self.index, self.occurrences))

    def __repr__(self) -> str:
        return f"Component(index={self.index!r}, occurrences={self.occurrences!r})"

    def get(self, option: str) -> Occurrence | None:
        """The effective occurrence of ``option`` (last wins), or None when unset."""
        for occ in reversed(self.occurrences):
            if occ.option == option:
                return None if occ.reset else occ
        return None

    def value(self, option: str) -> str | None:
        occ = self.get(option)
        return None if occ is None else occ.value

    def has(self, option: str) -> bool:
        return self.get(option) is not None

    def effective_memory(self) -> Occurrence | None:
        """The memory option that wins (--mem, --mem-per-cpu, --mem-per-gpu are exclusive)."""
        best: Occurrence | None = None
        rank = list(Source)
        for occ in self.occurrences:
            if occ.option not in _MEM_FAMILY or occ.reset:
                continue
            if best is None or rank.index(occ.source) >= rank.index(best.source):
                best = occ
        return best


class CommandLine(NamedTuple):
    """The command line split as sbatch splits it."""

    argv: tuple[str, ...]
    components: tuple[tuple[Occurrence, ...], ...]
    starts: tuple[int, ...]
    """Index of the first token of each command-line component."""
    script_index: int | None
    """Index of the script path, or None (script on stdin, or --wrap)."""
    unknown: tuple[str, ...] = ()
    ambiguous: str | None = None
    errors: tuple[str, ...] = ()
    """Things sbatch itself will reject (missing value, bad flag); forwarded anyway."""

    @property
    def script_path(self) -> str | None:
        return None if self.script_index is None else self.argv[self.script_index]

    @property
    def script_args(self) -> tuple[str, ...]:
        return () if self.script_index is None else self.argv[self.script_index + 1 :]

    @property
    def wrap(self) -> str | None:
        for comp in self.components:
            for occ in reversed(comp):
                if occ.option == "wrap":
                    return occ.value
        return None

    @property
    def script_from_stdin(self) -> bool:
        return self.script_index is None and self.wrap is None


class ParsedArgs(NamedTuple):
    """Everything sbatch would see: command line, environment and directives."""

    cmdline: CommandLine
    components: tuple[Component, ...]
    directive_components: int = 1
    foreign_directives: bool = False
    """The script header has ``#PBS`` or ``#BSUB`` lines (sbatch translates them)."""

    @property
    def argv(self) -> tuple[str, ...]:
        return self.cmdline.argv

    @property
    def hetjob(self) -> bool:
        return len(self.components) > 1

    @property
    def ambiguous(self) -> str | None:
        return self.cmdline.ambiguous

    @property
    def first(self) -> Component:
        return self.components[0]


class _Scan:
    """Accumulator of one parse (a plain class: cheap to define on optsub's path)."""

    __slots__ = ("ambiguous", "errors", "occ", "unknown")

    def __init__(self) -> None:
        self.occ: list[Occurrence] = []
        self.unknown: list[str] = []
        self.errors: list[str] = []
        self.ambiguous: str | None = None


def _scan(argv: Sequence[str], start: int, source: Source, scan: _Scan, *, where: str = "") -> int:
    """Parse options from ``argv[start:]`` until the first non-option; return its index."""
    i, n = start, len(argv)
    track = source is Source.CMDLINE
    while i < n:
        tok = argv[i]
        if tok == "--":
            return i + 1
        if tok.startswith("--"):
            name, eq, val = tok[2:].partition("=")
            spec = lookup_long(name)
            if spec is None:
                scan.unknown.append(tok)
                if not eq and i + 1 < n and not argv[i + 1].startswith("-") and argv[i + 1] != ":":
                    scan.ambiguous = scan.ambiguous or (
                        f"unknown option {tok} then {argv[i + 1]!r}: its value or the script?"
                    )
                scan.occ.append(
                    Occurrence(
                        f"--{name}",
                        val if eq else None,
                        source,
                        i if track else -1,
                        len(name) + 3 if eq else 0,
                        where,
                    )
                )
                i += 1
                continue
            if spec.arg is Arg.REQUIRED and not eq:
                if i + 1 >= n:
                    scan.errors.append(f"option --{name} requires a value")
                    return n
                scan.occ.append(
                    Occurrence(
                        spec.canonical, argv[i + 1], source, i + 1 if track else -1, 0, where
                    )
                )
                i += 2
                continue
            if spec.arg is Arg.NONE and eq:
                scan.errors.append(f"option --{name} takes no value")
            value = val if (eq and spec.arg is not Arg.NONE) else None
            scan.occ.append(
                Occurrence(spec.canonical, value, source, i if track else -1, len(name) + 3, where)
            )
            i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            i = _scan_short(argv, i, source, scan, where)
            continue
        return i
    return i


def _scan_short(argv: Sequence[str], i: int, source: Source, scan: _Scan, where: str) -> int:
    tok, n = argv[i], len(argv)
    track = source is Source.CMDLINE
    j = 1
    while j < len(tok):
        c = tok[j]
        spec = by_short(c)
        if spec is None:
            scan.unknown.append(f"-{c}")
            scan.errors.append(f"invalid option -- '{c}'")
            return i + 1
        if spec.arg is Arg.NONE:
            scan.occ.append(Occurrence(spec.canonical, None, source, i if track else -1, j, where))
            j += 1
            continue
        if j + 1 < len(tok):
            scan.occ.append(
                Occurrence(spec.canonical, tok[j + 1 :], source, i if track else -1, j + 1, where)
            )
            return i + 1
        if spec.arg is Arg.OPTIONAL:
            scan.occ.append(
                Occurrence(spec.canonical, None, source, i if track else -1, j + 1, where)
            )
            return i + 1
        if i + 1 >= n:
            scan.errors.append(f"option requires an argument -- '{c}'")
            return n
        scan.occ.append(
            Occurrence(spec.canonical, argv[i + 1], source, i + 1 if track else -1, 0, where)
        )
        return i + 2
    return i + 1


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """Split sbatch's arguments into components, the script path and its arguments."""
    argv = tuple(argv)
    scan = _Scan()
    components: list[tuple[Occurrence, ...]] = []
    starts: list[int] = []
    i = 0
    while True:
        starts.append(i)
        before = len(scan.occ)
        i = _scan(argv, i, Source.CMDLINE, scan)
        components.append(tuple(scan.occ[before:]))
        if i < len(argv) and argv[i] == ":":
            i += 1
            continue
        break
    script_index = i if i < len(argv) else None
    if script_index is not None and script_index > 0 and argv[script_index - 1] == "--":
        pass  # "--" ended the options: the next argument is the script whatever it looks like
    return CommandLine(
        argv,
        tuple(components),
        tuple(starts),
        script_index,
        tuple(scan.unknown),
        scan.ambiguous,
        tuple(scan.errors),
    )


_HET_SEP = re.compile(r"^\s*(hetjob|packjob)\b", re.IGNORECASE)


def _directive_words(text: str) -> list[str]:
    """Split one directive's text as sbatch's ``_get_argument`` does.

    Checked against sbatch 22.05: whitespace outside quotes ends a word even
    right after a backslash (``-J a\\ b`` is ``-J a`` then ``b``); otherwise a
    backslash is dropped and the next character kept (``x\\y`` is ``xy``,
    ``\\#`` a literal ``#``); quotes group and are dropped; an unquoted,
    unescaped ``#`` ends the whole line.
    """
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    escape = in_word = False
    for ch in text:
        if ch.isspace() and not quote:
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            escape = False
            continue
        in_word = True
        if escape:
            cur.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        elif quote:
            if ch == quote:
                quote = ""
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            in_word = bool(cur)
            break
        else:
            cur.append(ch)
    if in_word:
        words.append("".join(cur))
    return words


def directive_lines(script: str) -> list[list[tuple[int, list[str]]]]:
    """The ``#SBATCH`` directives of a script, per heterogeneous component.

    Returns one list per component of ``(line number, words)``.
    """
    comps: list[list[tuple[int, list[str]]]] = [[]]
    for lineno, line in enumerate(script.split("\n"), 1):
        if line.startswith("#SBATCH"):
            rest = line[len("#SBATCH") :]
            if _HET_SEP.match(rest):
                comps.append([])
                continue
            words = _directive_words(rest)
            if words:
                comps[-1].append((lineno, words))
            continue
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        break
    return comps


def _env_occurrences(env: Mapping[str, str], index: int) -> list[Occurrence]:
    out: list[Occurrence] = []
    for var, option in ENV_VARS.items():
        for name in (var, f"{var}_HET_GROUP_{index}", f"{var}_PACK_GROUP_{index}"):
            if name not in env:
                continue
            raw = env[name]
            spec = by_long(option)
            assert spec is not None
            if spec.arg is Arg.NONE:
                truthy = raw == "" or raw.lower() == "yes" or _nonzero_int(raw)
                out.append(Occurrence(option, None, Source.ENV, where=name, reset=not truthy))
            elif spec.arg is Arg.OPTIONAL and raw == "":
                out.append(Occurrence(option, None, Source.ENV, where=name))
            else:
                out.append(Occurrence(option, raw, Source.ENV, where=name))
    return out


def _nonzero_int(s: str) -> bool:
    try:
        return int(s) != 0
    except ValueError:
        return False


def combine(cmdline: CommandLine, env: Mapping[str, str], script: str | None) -> ParsedArgs:
    """Merge directives, environment and command line into components (precedence order)."""
    directives = directive_lines(script) if script is not None else [[]]
    n = max(len(directives), len(cmdline.components))
    comps: list[Component] = []
    for k in range(n):
        scan = _Scan()
        for lineno, words in directives[k] if k < len(directives) else []:
            _scan(words, 0, Source.DIRECTIVE, scan, where=f"line {lineno}")
        occ = list(scan.occ)
        occ += _env_occurrences(env, k)
        if k < len(cmdline.components):
            occ += cmdline.components[k]
        comps.append(Component(k, tuple(occ)))
    return ParsedArgs(cmdline, tuple(comps), len(directives), _foreign(script))


def _foreign(script: str | None) -> bool:
    """True if the script's header holds ``#PBS`` / ``#BSUB`` directives."""
    for line in (script or "").split("\n"):
        if line.startswith(("#PBS", "#BSUB")):
            return True
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            break
    return False


def parse(argv: Sequence[str], env: Mapping[str, str], script: str | None) -> ParsedArgs:
    """Parse a full submission (``script`` is the script text, or None if unknown)."""
    return combine(parse_command_line(argv), env, script)


def rewrite(parsed: ParsedArgs, changes: Mapping[str, str], component: int = 0) -> list[str]:
    """The argv with only ``changes`` (``{option: new value}``) applied to one component.

    A value written on the command line is replaced in place (same token, same
    form: ``-p a`` -> ``-p b``, ``--partition=a`` -> ``--partition=b``,
    ``-Hpa`` -> ``-Hpb``). A value that came from a directive, the environment
    or nowhere is overridden by a ``--option=value`` inserted at the start of
    the component (the command line beats both; the script is never edited).
    Every other byte of the argv is kept.

    Raises:
        ValueError: ``component`` has no command-line part to insert into.
    """
    argv = list(parsed.argv)
    comp = parsed.components[component]
    inserts: list[str] = []
    for option, value in changes.items():
        occ = comp.get(option)
        if occ is not None and occ.source is Source.CMDLINE and occ.token >= 0:
            tok = argv[occ.token]
            argv[occ.token] = tok[: occ.offset] + value
        else:
            inserts.append(f"--{option}={value}")
    if not inserts:
        return argv
    if component >= len(parsed.cmdline.starts):
        raise ValueError(f"component {component} has no command-line part")
    at = parsed.cmdline.starts[component]
    return argv[:at] + inserts + argv[at:]
