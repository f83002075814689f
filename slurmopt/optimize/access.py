"""Whom Slurm checks a job as: the account, QOS and unix groups it uses.

A job submitted without ``-A`` / ``--qos`` gets the user's defaults from
accounting, and Slurm checks ``AllowGroups`` against every group of the user,
not only the job's primary group. :class:`AccessIndex` resolves these once per
problem build:

- account: the job's own, else the user's ``DefaultAccount``
  (``sacctmgr show user withassoc``);
- QOS: the job's own, else (as slurmctld's ``assoc_mgr_fill_in_qos``) the
  association's ``DefaultQOS``, else its only allowed QOS when it allows exactly
  one, else ``normal``;
- groups: the job's primary group plus, where the user is known to this machine's
  user database (``pwd`` / ``grp``, as slurmctld reads it on its own host), every
  group that lists the user (``os.getgrouplist``).

Where accounting was not read (no slurmdbd, or nothing restricted), the account and
QOS of a job that does not state them stay unknown (None), and eligibility leaves it
out of partitions that restrict them.

Not handled: partition-specific associations (``sacctmgr ... Partition=``) and the
root association's DefaultQOS fallback (used by Slurm only when the user's
association has no DefaultQOS and allows several QOS).
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Callable, Sequence
from typing import NamedTuple

from slurmopt.model import Association, Job


class Identity(NamedTuple):
    """The account, QOS and groups Slurm checks a job's access as."""

    account: str | None
    qos: str | None
    groups: frozenset[str] | None
    """Every group of the user (None: only ``Job.group`` is known, or nothing)."""
    account_default: bool = False
    """The account is the user's default (the job did not state one)."""
    qos_default: bool = False
    """The QOS is the association's default (the job did not state one)."""


def unix_groups(user: str) -> frozenset[str] | None:
    """Names of every group of ``user`` on this machine (None: unknown user)."""
    try:
        pw = pwd.getpwnam(user)
    except (KeyError, OSError):
        return None
    try:
        gids = os.getgrouplist(user, pw.pw_gid)
    except OSError:
        gids = [pw.pw_gid]
    names: set[str] = set()
    for gid in gids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except (KeyError, OSError):
            continue
    return frozenset(names)


class AccessIndex:
    """Associations indexed by user, and a per-build cache of users' groups."""

    def __init__(
        self,
        associations: Sequence[Association],
        groups_of: Callable[[str], frozenset[str] | None] = unix_groups,
    ) -> None:
        self._assoc: dict[tuple[str, str], Association] = {}
        self._default_account: dict[str, str] = {}
        for a in associations:
            if a.partition:
                continue
            self._assoc.setdefault((a.user, a.account), a)
            if a.default_account:
                self._default_account.setdefault(a.user, a.default_account)
        self._groups_of = groups_of
        self._groups: dict[str, frozenset[str] | None] = {}

    def groups(self, user: str) -> frozenset[str] | None:
        if user not in self._groups:
            self._groups[user] = self._groups_of(user) if user else None
        return self._groups[user]

    def identity(self, job: Job) -> Identity:
        """Whom Slurm checks ``job`` as (see the module docstring)."""
        account, account_default = job.account, False
        if account is None and job.user in self._default_account:
            account, account_default = self._default_account[job.user], True
        qos, qos_default = job.qos, False
        if qos is None and account is not None:
            a = self._assoc.get((job.user, account))
            if a is not None:
                qos_default = True
                if a.default_qos:
                    qos = a.default_qos
                elif len(a.qos) == 1:
                    qos = a.qos[0]
                else:
                    qos = "normal"
        groups = self.groups(job.user)
        if job.group is not None:
            groups = frozenset({job.group} | (groups or frozenset()))
        return Identity(account, qos, groups, account_default, qos_default)
