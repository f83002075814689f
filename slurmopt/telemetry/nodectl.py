"""What telemetry needs from Slurm about nodes, behind a small interface.

:class:`NodeControl` is read by ``slurmopt health`` and ``slurmopt probe
--push slurm``. :class:`BackendNodeControl` delegates every call to the Slurm
backend (:func:`slurmopt.slurm.backend.get_backend`): ``nodes``, ``drain_node``,
``resume_node`` and ``set_node_extra`` (``Extra=``, with the backend's EAGAIN
retry). No Slurm command is built here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from slurmopt.model import Node

if TYPE_CHECKING:
    from slurmopt.slurm.backend import Backend

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

    def __init__(self, backend: Backend | None = None) -> None:
        self._backend = backend

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from slurmopt.slurm.backend import get_backend

            self._backend = get_backend()
        return self._backend

    def nodes(self) -> tuple[Node, ...]:
        """Every node (the backend's node read, not a full snapshot)."""
        return self.backend.nodes()

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes() if n.name == name), None)

    def drain(self, name: str, reason: str) -> None:
        self.backend.drain_node(name, reason)

    def resume(self, name: str) -> None:
        self.backend.resume_node(name)

    def set_extra(self, name: str, text: str) -> None:
        self.backend.set_node_extra(name, text)
