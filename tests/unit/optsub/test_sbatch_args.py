"""Table-driven tests of the sbatch argument / directive / environment parser."""

from __future__ import annotations

import pytest

from slurmopt.slurm.sbatch_args import (
    OPTIONS,
    Arg,
    Source,
    directive_lines,
    lookup_long,
    parse,
    parse_command_line,
    rewrite,
)

SCRIPT = """#!/bin/bash
# a comment before
#SBATCH --partition=a100   # trailing comment
#SBATCH -J "my job"  --time 10

#SBATCH --gres=gpu:a100:2
echo hello
#SBATCH --qos=ignored-after-command
"""


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["-p", "gpu", "s.sh"], "partition", "gpu"),
        (["-pgpu", "s.sh"], "partition", "gpu"),
        (["--partition=gpu", "s.sh"], "partition", "gpu"),
        (["--partition", "gpu", "s.sh"], "partition", "gpu"),
        (["--part=gpu", "s.sh"], "partition", "gpu"),  # unique prefix
        (["-Hpgpu", "s.sh"], "partition", "gpu"),  # clustered flags
        (["-Hp", "gpu", "s.sh"], "partition", "gpu"),
        (["-p", "a", "-p", "b", "s.sh"], "partition", "b"),  # last wins
        (["-J", "-v", "s.sh"], "job-name", "-v"),  # a value may look like an option
        (["--job-name", ":", "s.sh"], "job-name", ":"),
        (["-G", "a100:2", "s.sh"], "gpus", "a100:2"),
        (["--gpus-per-node=h100:1", "s.sh"], "gpus-per-node", "h100:1"),
        (["--nice", "s.sh"], "nice", None),  # optional value must be attached
        (["--nice=5", "s.sh"], "nice", "5"),
        (["-k", "s.sh"], "no-kill", None),
        (["-koff", "s.sh"], "no-kill", "off"),
        (["--tasks-per-node=2", "s.sh"], "ntasks-per-node", "2"),  # alias
        (["--cluster=c1", "s.sh"], "clusters", "c1"),
        (["-M", "c1,c2", "s.sh"], "clusters", "c1,c2"),
        (["--wrap", "echo a; echo 'b'"], "wrap", "echo a; echo 'b'"),
        (["-a", "0-9%2", "s.sh"], "array", "0-9%2"),
        (["-d", "afterok:1:2", "s.sh"], "dependency", "afterok:1:2"),
        (["-C", "a100|h100", "s.sh"], "constraint", "a100|h100"),
        (["--exclusive", "s.sh"], "exclusive", None),
        (["--exclusive=user", "s.sh"], "exclusive", "user"),
    ],
)
def test_command_line_forms(argv: list[str], option: str, value: str | None) -> None:
    p = parse(argv, {}, None)
    occ = p.first.get(option)
    assert occ is not None
    assert occ.value == value
    assert occ.source is Source.CMDLINE


@pytest.mark.parametrize(
    ("argv", "script", "args"),
    [
        (["-p", "a", "job.sh", "x", "-p", "y"], "job.sh", ("x", "-p", "y")),
        (["job.sh"], "job.sh", ()),
        (["--", "-odd-name.sh", "1"], "-odd-name.sh", ("1",)),
        (["-H", "-", "arg"], "-", ("arg",)),
        (["-p", "a"], None, ()),
    ],
)
def test_script_and_arguments(argv: list[str], script: str | None, args: tuple[str, ...]) -> None:
    cl = parse_command_line(argv)
    assert cl.script_path == script
    assert cl.script_args == args
    # options after the script belong to the script, not to sbatch
    assert [o.value for o in cl.components[0] if o.option == "partition"] in ([], ["a"])


def test_stdin_and_wrap() -> None:
    assert parse_command_line(["-p", "a"]).script_from_stdin
    cl = parse_command_line(["--wrap=sleep 1"])
    assert not cl.script_from_stdin
    assert cl.wrap == "sleep 1"


def test_directives_stop_at_first_command_and_honour_comments_quotes() -> None:
    comps = directive_lines(SCRIPT)
    assert len(comps) == 1
    words = [w for _, w in comps[0]]
    assert words == [["--partition=a100"], ["-J", "my job", "--time", "10"], ["--gres=gpu:a100:2"]]
    p = parse(["s.sh"], {}, SCRIPT)
    assert p.first.value("partition") == "a100"
    assert p.first.value("job-name") == "my job"
    assert p.first.value("time") == "10"
    assert p.first.get("qos") is None


@pytest.mark.parametrize(
    ("line", "words"),
    [  # each checked against sbatch 22.05 on the testbed
        ("--comment='a # b'", ["--comment=a # b"]),
        ("-J x\\y", ["-J", "xy"]),
        ("-J a\\ b", ["-J", "a", "b"]),  # sbatch: "Invalid directive found in batch script: b"
        ("--output=/tmp/x#y", ["--output=/tmp/x"]),
        ('--comment="x y" -J q', ["--comment=x y", "-J", "q"]),
        ('-J  "two words"   # trailing', ["-J", "two words"]),
        ("-J a\\#b", ["-J", "a#b"]),
        ("# all comment", []),
    ],
)
def test_directive_words(line: str, words: list[str]) -> None:
    expected = [[(2, words)]] if words else [[]]
    assert directive_lines(f"#!/bin/sh\n#SBATCH {line}\ntrue\n") == expected


@pytest.mark.parametrize(
    ("directive", "env", "argv", "expected", "source"),
    [
        ("a", {}, [], "a", Source.DIRECTIVE),
        ("a", {"SBATCH_PARTITION": "b"}, [], "b", Source.ENV),
        ("a", {"SBATCH_PARTITION": "b"}, ["-p", "c"], "c", Source.CMDLINE),
        (None, {"SBATCH_PARTITION": "b"}, ["-p", "c"], "c", Source.CMDLINE),
        ("a", {}, ["-p", "c"], "c", Source.CMDLINE),
        (None, {"SBATCH_PARTITION": "b"}, [], "b", Source.ENV),
    ],
)
def test_precedence_cmdline_env_directive(
    directive: str | None, env: dict[str, str], argv: list[str], expected: str, source: Source
) -> None:
    script = "#!/bin/sh\n" + (f"#SBATCH -p {directive}\n" if directive else "") + "true\n"
    p = parse([*argv, "s.sh"], env, script)
    occ = p.first.get("partition")
    assert occ is not None
    assert (occ.value, occ.source) == (expected, source)


@pytest.mark.parametrize(
    ("var", "option", "value"),
    [
        ("SBATCH_GRES", "gres", "gpu:a100:1"),
        ("SBATCH_GPUS", "gpus", "2"),
        ("SBATCH_TIMELIMIT", "time", "1:00:00"),
        ("SBATCH_ACCOUNT", "account", "proj"),
        ("SBATCH_QOS", "qos", "high"),
        ("SBATCH_CONSTRAINT", "constraint", "a|b"),
        ("SBATCH_MEM_PER_NODE", "mem", "4G"),
        ("SBATCH_ARRAY_INX", "array", "1-3"),
        ("SLURM_CLUSTERS", "clusters", "c"),
    ],
)
def test_environment_variables(var: str, option: str, value: str) -> None:
    p = parse(["s.sh"], {var: value}, None)
    occ = p.first.get(option)
    assert occ is not None and occ.value == value and occ.source is Source.ENV


def test_env_flag_false_resets_directive() -> None:
    script = "#!/bin/sh\n#SBATCH --requeue\ntrue\n"
    assert parse(["s.sh"], {}, script).first.has("requeue")
    assert not parse(["s.sh"], {"SBATCH_REQUEUE": "no"}, script).first.has("requeue")
    assert parse(["s.sh"], {"SBATCH_REQUEUE": "1"}, None).first.has("requeue")


def test_memory_options_cmdline_beats_env() -> None:
    p = parse(["--mem-per-cpu=1G", "s.sh"], {"SBATCH_MEM_PER_NODE": "8G"}, None)
    occ = p.first.effective_memory()
    assert occ is not None and occ.option == "mem-per-cpu"


def test_hetjob_command_line_and_script() -> None:
    cl = parse_command_line(["-p", "a", ":", "-p", "b", "-n", "2", "s.sh"])
    assert len(cl.components) == 2
    assert cl.starts == (0, 3)
    assert cl.script_path == "s.sh"
    script = "#!/bin/sh\n#SBATCH -p a\n#SBATCH hetjob\n#SBATCH -p b\ntrue\n"
    p = parse(["s.sh"], {}, script)
    assert p.hetjob
    assert [c.value("partition") for c in p.components] == ["a", "b"]
    p2 = parse(["-p", "x", ":", "-p", "y", "s.sh"], {"SBATCH_QOS_HET_GROUP_1": "q"}, script)
    assert [c.value("partition") for c in p2.components] == ["x", "y"]
    assert p2.components[1].value("qos") == "q"  # SBATCH_<VAR>_HET_GROUP_<n>: component n only
    assert p2.components[0].value("qos") is None


def test_unknown_options_forwarded_and_ambiguity_flagged() -> None:
    cl = parse_command_line(["--future-opt=1", "s.sh"])
    assert cl.unknown == ("--future-opt=1",)
    assert cl.script_path == "s.sh"
    assert cl.ambiguous is None
    cl2 = parse_command_line(["--future-opt", "value", "s.sh"])
    assert cl2.ambiguous is not None
    cl3 = parse_command_line(["--future-flag", "--hold", "s.sh"])
    assert cl3.ambiguous is None and cl3.script_path == "s.sh"


def test_missing_value_and_invalid_short_are_errors_not_exceptions() -> None:
    assert parse_command_line(["-p"]).errors
    assert parse_command_line(["-Z", "s.sh"]).errors


def test_table_consistency() -> None:
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    shorts = [o.short for o in OPTIONS if o.short]
    assert len(shorts) == len(set(shorts))
    assert lookup_long("partition") is not None
    assert lookup_long("clus") is None  # ambiguous: cluster / clusters / cluster-constraint
    spec = lookup_long("nice")
    assert spec is not None and spec.arg is Arg.OPTIONAL


@pytest.mark.parametrize(
    ("argv", "env", "script", "changes", "expected"),
    [
        (["-p", "a,b", "s.sh"], {}, None, {"partition": "b"}, ["-p", "b", "s.sh"]),
        (["-pa,b", "s.sh"], {}, None, {"partition": "b"}, ["-pb", "s.sh"]),
        (["-Hpa,b", "s.sh"], {}, None, {"partition": "b"}, ["-Hpb", "s.sh"]),
        (["--partition=a,b", "s.sh"], {}, None, {"partition": "b"}, ["--partition=b", "s.sh"]),
        (["--part", "a,b", "s.sh"], {}, None, {"partition": "b"}, ["--part", "b", "s.sh"]),
        (["s.sh", "-p", "x"], {}, None, {"partition": "b"}, ["--partition=b", "s.sh", "-p", "x"]),
        (
            ["s.sh"],
            {"SBATCH_PARTITION": "a,b"},
            None,
            {"partition": "b"},
            ["--partition=b", "s.sh"],
        ),
        (
            ["-J", "x", "s.sh"],
            {},
            "#!/bin/sh\n#SBATCH -p a,b\n#SBATCH --gres=gpu:a100:1\ntrue\n",
            {"partition": "b", "gres": "gpu:h100:1"},
            ["--partition=b", "--gres=gpu:h100:1", "-J", "x", "s.sh"],
        ),
        (
            ["--gres", "gpu:a100:2,lic:1", "-p", "a,b", "--wrap", "x; y"],
            {},
            None,
            {"partition": "b", "gres": "gpu:h100:2,lic:1"},
            ["--gres", "gpu:h100:2,lic:1", "-p", "b", "--wrap", "x; y"],
        ),
    ],
)
def test_rewrite_changes_only_what_is_asked(
    argv: list[str],
    env: dict[str, str],
    script: str | None,
    changes: dict[str, str],
    expected: list[str],
) -> None:
    p = parse(argv, env, script)
    out = rewrite(p, changes)
    assert out == expected
    again = parse(out, env, script)
    for opt, val in changes.items():
        assert again.first.value(opt) == val
