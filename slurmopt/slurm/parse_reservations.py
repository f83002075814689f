"""``scontrol -o show reservations`` (one line per reservation; the same text on 22.05
through 26.05) -> :class:`slurmopt.model.Reservation`.

Nodes of an active reservation are kept for the jobs that ask for it
(``--reservation``); eligibility counts them out for every other job.
"""

from __future__ import annotations

import logging
from datetime import datetime

from slurmopt.model import Reservation
from slurmopt.slurm import fields, hostlist
from slurmopt.slurm.parse_partitions import parse_oneliner

log = logging.getLogger(__name__)

RESERVATIONS_ARGV = ("scontrol", "-o", "show", "reservations")


def _when(text: str | None) -> int | None:
    if not text or text in ("Unknown", "None", "N/A", "(null)"):
        return None
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp())
    except ValueError:
        log.warning("reservation: unreadable time %r", text)
        return None


def _names(text: str | None) -> tuple[str, ...]:
    value = fields.nonempty(text)
    if value is None or value in ("(null)", "ALL"):
        return ()
    return tuple(v for v in value.lstrip("-").split(",") if v)


def parse_reservations_text(text: str) -> tuple[Reservation, ...]:
    """Parse the oneliner output; ``No reservations in the system`` gives ()."""
    out: list[Reservation] = []
    for line in text.splitlines():
        if not line.startswith("ReservationName="):
            continue
        kv = parse_oneliner(line)
        nodes = fields.nonempty(kv.get("Nodes"))
        out.append(
            Reservation(
                name=kv["ReservationName"],
                nodes=tuple(hostlist.expand(nodes)) if nodes and nodes != "(null)" else (),
                start=_when(kv.get("StartTime")),
                end=_when(kv.get("EndTime")),
                users=_names(kv.get("Users")),
                accounts=_names(kv.get("Accounts")),
                flags=_names(kv.get("Flags")),
            )
        )
    return tuple(out)
