"""A fake clock for budget tests: every read advances by ``dt``, so time is counted in steps."""

from __future__ import annotations


class Ticking:
    """``clock()`` returns ``reads * dt``; ``elapsed`` is the fake time the run used."""

    def __init__(self, dt: float = 0.001) -> None:
        self.dt = dt
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.reads * self.dt

    @property
    def elapsed(self) -> float:
        return self.reads * self.dt
