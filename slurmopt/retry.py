"""The one retry loop: a few tries with a doubling pause, for transient failures only.

Used by the Slurm backends (slurmctld's EAGAIN on an update), the pyslurm backend
and the history database (locked or unreachable). Standard library only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def retry(
    work: Callable[[int], _T],
    *,
    transient: Callable[[Exception], bool],
    attempts: int,
    first_pause_s: float,
    max_pause_s: float = math.inf,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, Exception], None] | None = None,
) -> _T:
    """``work(attempt)`` (attempt counts from 1) until it returns, at most ``attempts`` times.

    An exception for which ``transient`` is true is followed by a pause
    (``first_pause_s``, doubling up to ``max_pause_s``) and another try, with
    ``on_retry(attempt, exc)`` called first; any other exception, or the last
    try's, propagates unchanged. No pause follows the last try.

    Raises:
        Exception: whatever ``work`` raised last.
    """
    pause = first_pause_s
    tries = max(1, attempts)
    for attempt in range(1, tries + 1):
        try:
            return work(attempt)
        except Exception as exc:
            if attempt == tries or not transient(exc):
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(pause)
            pause = min(pause * 2, max_pause_s)
    raise AssertionError("unreachable")  # pragma: no cover
