"""The job id of a submission whose sbatch did not print it (standard library only).

sbatch prints no id with ``-Q``/``--quiet``, and none when it fails while
slurmctld is slow ("Socket timed out on send/recv operation"), although
slurmctld may still create the job once it answers. So optsub gives every
submission it places a unique tag in its comment (``--comment=optsub:<hex>``,
unless the job carries a comment of its own) and, when sbatch printed no id,
asks Slurm once (one ``squeue``) which job carries it. The job is never
submitted again: the answer only fixes the record and the exit status.

:func:`resolve` turns sbatch's result and that one answer into what optsub
reports (``docs/optsub.md``, "Faults").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

TAG_PREFIX = "optsub:"


def new_tag() -> str:
    """A tag no other submission carries (64 random bits)."""
    return TAG_PREFIX + os.urandom(8).hex()


def may_tag(decision: Any, parsed: Any) -> bool:
    """Whether optsub adds its tag: a placed submission (``rewrite`` or ``keep``) without
    a comment of its own (from any source) and not ``--test-only`` (which creates no job).

    Submissions passed through are sent exactly as written.
    """
    if decision is None or parsed is None or decision.action == "passthrough":
        return False
    first = parsed.first
    return first.value("comment") is None and not first.has("test-only")


class Outcome(NamedTuple):
    """What optsub reports after sbatch, once the tag was looked up (or not)."""

    job_id: int | None
    source: str | None
    """``stdout`` (sbatch printed it), ``tag`` (found by the tag) or None (unknown)."""
    returncode: int
    stdout: bytes = b""
    """What optsub prints for sbatch, which could not (the id, when sbatch failed but
    the job exists)."""
    message: str = ""
    """One line for stderr ("" for none)."""


def resolve(
    res: Any,
    *,
    tag: str | None,
    lookup: Callable[[str], list[int]],
    waits: bool,
    quiet: bool,
    parsable: bool,
) -> Outcome:
    """The job id, exit status and message, given sbatch's result ``res``.

    ``lookup(tag)`` is called at most once, only when sbatch printed no id.
    Rules: sbatch printed an id: that one. Else, with a tag: exactly one job
    found is the job (if sbatch failed, and not because of ``--wait``, optsub
    says so, prints what sbatch prints on success and exits 0: the job exists
    and must not be submitted again); none found: sbatch's status (1 when
    optsub stopped a hung sbatch); the lookup failed: sbatch's status, and a
    warning naming the tag when the job may exist.
    """
    rc = res.returncode if res.returncode >= 0 else 1  # optsub killed a hung sbatch
    if res.job_id is not None:
        return Outcome(res.job_id, "stdout", res.returncode)
    if tag is None:
        return Outcome(None, None, rc)
    failed = rc != 0 or res.error is not None
    try:
        ids = lookup(tag)
    except OSError as exc:
        if not failed and quiet:
            why = f"job id unknown (-Q) and {exc}: this job will not be managed"
        else:
            why = f"cannot tell whether the job was created ({exc}); it carries --comment={tag}"
            why += ": check squeue --me before submitting again"
        return Outcome(None, None, rc, message=f"optsub: warning: {why}")
    if len(ids) != 1:
        msg = ""
        if failed and res.error is not None:
            msg = (
                f"optsub: no job carries --comment={tag} yet: check squeue --me before resubmitting"
            )
        if len(ids) > 1:
            msg = f"optsub: warning: {len(ids)} jobs carry --comment={tag}: job id not recorded"
        return Outcome(None, None, rc, message=msg)
    jid = ids[0]
    if not failed or waits:
        return Outcome(jid, "tag", rc)
    out = b"" if quiet else (f"{jid}\n" if parsable else f"Submitted batch job {jid}\n").encode()
    msg = f"optsub: sbatch reported a failure, but job {jid} was created: not submitting again"
    return Outcome(jid, "tag", 0, out, msg)
