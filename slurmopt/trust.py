"""Who may say what: the trust decisions of slurmopt (docs/security.md), as pure functions.

Standard library only (optsub imports it). The model in one paragraph: a job
is *managed*, and its allowed set known, only through a channel its owner
controls and no one else can forge:

* ``optsub``: a spool record whose file is owned (``st_uid`` from ``fstat`` of
  a descriptor opened without following symlinks) by the user Slurm reports as
  the job's owner, and whose ``user`` field names that same user;
* ``plugin``: ``slurmopt:allowed=`` in the job's ``admin_comment``, which only
  slurmctld (the job_submit plugin) and Slurm administrators can set;
* ``site:...``: a rule of the root-owned configuration over the job's own
  Slurm fields (account, the owner's comment, or every job).

The allowed set always contains the partitions the job is in now (what its
owner submitted to, or where the controller moved it within the set).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from slurmopt.lazylog import get_logger

log = get_logger("slurmopt.trust")

RECORD_SLACK_S = 600
"""A record may be this much older than its job's submit time (clock skew between hosts)."""


class Refusal:
    """One input not used for a trust reason: the audit trail's row.

    Immutable. A plain class, and :class:`Claim` a NamedTuple: optsub imports this
    module on its submit path, where a frozen dataclass costs about 0.5 ms per
    process (issue 16).

    Attributes:
        component: who refused: ``ingest``, ``controller``, ``optsub``.
        who: the user the input came from (file owner name, or ``uid N``), ``?`` if unknown.
        what: the file, record or job concerned.
        why: the reason.
    """

    __slots__ = ("component", "what", "who", "why")
    component: str
    who: str
    what: str
    why: str

    def __init__(self, component: str, who: str, what: str, why: str) -> None:
        # file names and claimed user names are the attacker's: no control characters in logs
        object.__setattr__(self, "component", component)
        object.__setattr__(self, "who", printable(who))
        object.__setattr__(self, "what", printable(what))
        object.__setattr__(self, "why", printable(why))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple[str, str, str, str]:
        return (self.component, self.who, self.what, self.why)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Refusal) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "Refusal(component={!r}, who={!r}, what={!r}, why={!r})".format(*self._fields())

    def log(self) -> None:
        log.warning("refused (%s): %s from %s: %s", self.component, self.what, self.who, self.why)

    def to_dict(self) -> dict[str, str]:
        return {"component": self.component, "who": self.who, "what": self.what, "why": self.why}


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (one log line)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def user_name(uid: int) -> str:
    """The user name of ``uid`` (as optsub writes it in its records), else the number."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def file_refusal(name: str, owner: str) -> str | None:
    """Why a spool file named ``name`` owned by ``owner`` is not used (None: it may be read).

    optsub names its files ``optsub-<user>.jsonl`` (and claimed or fallback
    variants ``optsub-<user>.<anything>``): a file named after another user
    than its owner is a forgery or a trap.
    """
    if not name.startswith("optsub-"):
        return "not an optsub spool file name"
    if not name.startswith(f"optsub-{owner}."):
        return f"file named after another user, owned by {owner}"
    return None


def record_refusal(rec: Mapping[str, Any], owner: str) -> str | None:
    """Why a record read from a file owned by ``owner`` is not used (None: it is attributable).

    A record that names no user is the owner's (it is stored with the owner's
    uid and name, never with what it says).
    """
    user = rec.get("user")
    if user is not None and not isinstance(user, str):
        return "user is not a string"
    if user and user != owner:
        return f"record claims user {user!r} in a file owned by {owner}"
    job_id = rec.get("job_id")
    if job_id is not None and (isinstance(job_id, bool) or not isinstance(job_id, int)):
        return "job_id is not an integer"
    return None


class Claim(NamedTuple):
    """An attested optsub record about one job (from the history database)."""

    job_id: int
    owner: str
    """The spool file's owner (attested by the file system), not what the record says."""
    allowed: tuple[str, ...]
    pinned: bool
    at: int
    cluster: str = ""


def claim_refusal(
    claim: Claim, *, job_user: str, submit_time: int | None, cluster: str
) -> str | None:
    """Why an optsub record does not make a job managed (None: it does).

    Args:
        claim: the attested record.
        job_user: the job's owner as Slurm reports it.
        submit_time: the job's submit time (a record older than the job is
            about an earlier job with the same id).
        cluster: this cluster's name.
    """
    if claim.owner != job_user:
        return f"record written by {claim.owner} for a job of {job_user}"
    if claim.cluster and cluster and claim.cluster != cluster:
        return f"record is for cluster {claim.cluster!r}"
    if submit_time and claim.at < submit_time - RECORD_SLACK_S:
        return "record is older than the job (an earlier job with the same id)"
    return None


def allowed_set(claimed: Iterable[str], current: Sequence[str]) -> tuple[str, ...]:
    """The claimed allowed set, always including the job's current partitions (in order)."""
    out = [p for p in claimed if p]
    out += [p for p in current if p not in out]
    return tuple(dict.fromkeys(out))


def overlay_refusal(
    rec: Mapping[str, Any], *, owner: str, me: str, slurm_owner: str | None
) -> str | None:
    """Why optsub does not count a recent submission of the spool (None: it counts).

    Args:
        rec: the record.
        owner: its file's owner.
        me: the user running optsub.
        slurm_owner: the owner Slurm reports for the record's job id when it is
            pending (None: Slurm does not know it as a pending job, or was not asked).
    """
    why = record_refusal(rec, owner)
    if why:
        return why
    if owner == me:
        return None
    if slurm_owner is None:
        return "job id not pending in Slurm"
    if slurm_owner != owner:
        return f"job belongs to {slurm_owner}"
    return None


def me() -> str:
    """The user running this process (by real uid)."""
    return user_name(os.getuid())
