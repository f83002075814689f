"""XIDs from the kernel log (``/dev/kmsg``): what NVML only reports to a live listener.

The NVIDIA driver logs every XID as ``NVRM: Xid (PCI:0000:3b:00): 79, pid=...,
GPU has fallen off the bus.``. A one-shot probe listening to NVML events sees
only the XIDs raised while it listens; the kernel ring buffer keeps them since
boot. Each ``/dev/kmsg`` record carries a sequence number
(``prio,seq,usec,flags;text``), so ``slurmopt health`` remembers the last one
it judged and reacts to new XIDs only.

Reading ``/dev/kmsg`` needs root where ``kernel.dmesg_restrict`` is 1 (slurmd
runs the HealthCheckProgram as root); a failure to read is logged and the
probe goes on without kernel XIDs.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_KMSG = "/dev/kmsg"
MAX_RECORDS = 100_000

_XID = re.compile(
    r"NVRM: Xid \(PCI:(?:[0-9A-Fa-f]+:)?([0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})(?:\.[0-9A-Fa-f])?\):"
    r"\s*(\d+)"
)


@dataclass(frozen=True, slots=True)
class KernelXid:
    """One XID line of the kernel log."""

    seq: int
    pci: str
    """Bus and device, lower case (``3b:00``), as :func:`pci_key` gives for NVML's bus id."""
    xid: int
    gpu_index: int | None = None
    text: str = ""


def pci_key(bus_id: str) -> str:
    """``00000000:3B:00.0`` (NVML) or ``0000:3b:00`` (kernel) -> ``3b:00``."""
    parts = bus_id.lower().split(".")[0].split(":")
    return ":".join(parts[-2:])


def parse_records(records: Iterable[str]) -> list[KernelXid]:
    """XIDs in ``/dev/kmsg`` records (``prio,seq,usec,flags;message``); other lines skipped."""
    out: list[KernelXid] = []
    for rec in records:
        head, sep, msg = rec.partition(";")
        if not sep:
            continue
        fields = head.split(",")
        if len(fields) < 2 or not fields[1].isdigit():
            continue
        m = _XID.search(msg)
        if m:
            out.append(
                KernelXid(
                    int(fields[1]), m.group(1).lower(), int(m.group(2)), text=msg.strip()[:160]
                )
            )
    return out


def read_records(path: str = DEFAULT_KMSG) -> list[str]:
    """Every record now in the kernel ring buffer (non-blocking read of ``/dev/kmsg``).

    Raises:
        OSError: the device cannot be opened (no permission, not Linux).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    out: list[str] = []
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # a saved copy: one record per line
            with os.fdopen(os.dup(fd), encoding="utf-8", errors="replace") as fh:
                return fh.read().splitlines()[-MAX_RECORDS:]
        while len(out) < MAX_RECORDS:
            try:
                chunk = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # a record was overwritten while reading
                    continue
                raise
            if not chunk:
                break
            out.append(chunk.decode("utf-8", errors="replace").rstrip("\n"))
    finally:
        os.close(fd)
    return out


def read_boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str | None:
    """This boot's id (kernel log sequence numbers restart with it), or None."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None
