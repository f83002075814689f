"""slurmopt.retry: the one retry loop (backends' EAGAIN, the history database)."""

from __future__ import annotations

import pytest

from slurmopt.retry import retry


class Busy(Exception):
    pass


def test_retries_transient_failures_with_doubling_capped_pauses() -> None:
    pauses: list[float] = []
    seen: list[int] = []

    def work(attempt: int) -> str:
        if attempt < 4:
            raise Busy(attempt)
        return f"done at {attempt}"

    out = retry(
        work,
        transient=lambda e: isinstance(e, Busy),
        attempts=5,
        first_pause_s=0.1,
        max_pause_s=0.3,
        sleep=pauses.append,
        on_retry=lambda n, _e: seen.append(n),
    )
    assert out == "done at 4"
    assert pauses == [0.1, 0.2, 0.3] and seen == [1, 2, 3]


def test_last_failure_propagates_without_a_final_pause() -> None:
    pauses: list[float] = []

    def work(attempt: int) -> None:
        raise Busy(attempt)

    with pytest.raises(Busy, match="3"):
        retry(work, transient=lambda e: True, attempts=3, first_pause_s=1, sleep=pauses.append)
    assert pauses == [1, 2]


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def work(attempt: int) -> None:
        calls.append(attempt)
        raise ValueError("no")

    with pytest.raises(ValueError):
        retry(
            work, transient=lambda e: isinstance(e, Busy), attempts=5, first_pause_s=0, sleep=print
        )
    assert calls == [1]
