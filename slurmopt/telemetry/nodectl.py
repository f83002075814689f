"""What telemetry needs from Slurm about nodes, behind a small interface.

:class:`NodeControl` is read by ``slurmopt health`` and ``slurmopt probe
--push slurm``. :class:`BackendNodeControl` delegates to the Slurm backend
(:func:`slurmopt.slurm.backend.get_backend`): ``drain_node``, ``resume_node``
and its node reading. Writing a node's ``Extra`` field uses the backend's
``set_node_extra`` when it has one, else the backend's command runner with
``scontrol update NodeName=N Extra=TEXT`` (accepted by 22.05 and later: 22.05's
``sinfo --json`` already carries ``extra``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from slurmopt.model import Node

log = logging.getLogger(__name__)


class NodeControl(Protocol):
    """Read one node, drain / resume it, write its ``Extra`` field.

    Every method raises :class:`~slurmopt.errors.SlurmUnavailable` or
    :class:`~slurmopt.errors.SlurmCommandError` when Slurm fails.
    """

    def node(self, name: str) -> Node | None:
        """The node as Slurm reports it (None: no such node)."""
        ...

    def drain(self, name: str, reason: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def set_extra(self, name: str, text: str) -> None: ...


class BackendNodeControl:
    """:class:`NodeControl` over the Slurm backend (created on first use)."""

    def __init__(self, backend: Any | None = None) -> None:
        self._backend = backend

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from slurmopt.slurm.backend import get_backend

            self._backend = get_backend()
        return self._backend

    def nodes(self) -> tuple[Node, ...]:
        """Every node (the backend's node read when it has one, else a full snapshot)."""
        b = self.backend
        adapter = getattr(b, "adapter", None)
        if adapter is not None and callable(getattr(adapter, "read_nodes", None)):
            return tuple(adapter.read_nodes())
        return tuple(b.snapshot().nodes)

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes() if n.name == name), None)

    def drain(self, name: str, reason: str) -> None:
        self.backend.drain_node(name, reason)

    def resume(self, name: str) -> None:
        self.backend.resume_node(name)

    def set_extra(self, name: str, text: str) -> None:
        b = self.backend
        fn = getattr(b, "set_node_extra", None)
        if callable(fn):
            fn(name, text)
            return
        runner = getattr(b, "runner", None)
        if runner is None:
            from slurmopt.slurm.runner import Runner

            runner = Runner()
        runner.run(["scontrol", "update", f"NodeName={name}", f"Extra={text}"])
