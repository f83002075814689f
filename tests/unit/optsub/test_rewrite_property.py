"""Property: rewriting the partition changes that value only; every other byte stays."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slurmopt.slurm.sbatch_args import parse, rewrite

VALUE = st.text(alphabet="abcdefgh0123456789,:=%-_ ", min_size=1, max_size=8).filter(
    lambda v: not v.startswith("-") and v != ":"
)
# (long name, short letter or None) of options that take a value
VALUED = [
    ("partition", "p"),
    ("job-name", "J"),
    ("time", "t"),
    ("account", "A"),
    ("gres", None),
    ("comment", None),
    ("constraint", "C"),
    ("nodes", "N"),
]
FLAGS = ["--hold", "-H", "--requeue", "-O", "--parsable", "--exclusive"]


@st.composite
def option_tokens(draw: st.DrawFn) -> list[str]:
    if draw(st.booleans()):
        return [draw(st.sampled_from(FLAGS))]
    name, short = draw(st.sampled_from(VALUED))
    value = draw(VALUE)
    forms = [[f"--{name}={value}"], [f"--{name}", value]]
    if short:
        forms += [[f"-{short}{value}"], [f"-{short}", value], [f"-H{short}", value]]
    return draw(st.sampled_from(forms))


@settings(max_examples=300, deadline=None)
@given(
    opts=st.lists(option_tokens(), max_size=8),
    script_args=st.lists(VALUE, max_size=3),
    new=st.sampled_from(["h100", "a100,x"]),
)
def test_rewrite_partition_only(opts: list[list[str]], script_args: list[str], new: str) -> None:
    argv = [t for o in opts for t in o] + ["job.sh", *script_args]
    before = parse(argv, {}, None)
    after_argv = rewrite(before, {"partition": new})
    after = parse(after_argv, {}, None)
    assert after.first.value("partition") == new
    assert after.cmdline.script_path == "job.sh"
    assert after.cmdline.script_args == tuple(script_args)
    strip = [(o.option, o.value) for o in before.first.occurrences if o.option != "partition"]
    assert [
        (o.option, o.value) for o in after.first.occurrences if o.option != "partition"
    ] == strip
    if before.first.get("partition") is None:
        assert after_argv == [f"--partition={new}", *argv]
    else:
        assert len(after_argv) == len(argv)
        changed = [i for i, (a, b) in enumerate(zip(argv, after_argv, strict=True)) if a != b]
        assert len(changed) <= 1
