"""A module logger that imports :mod:`logging` only when something is logged.

optsub's submit path imports the model, the optimizer and its own modules on
every submission and normally logs nothing; ``logging`` (with ``threading``,
``traceback``, ``string``, ``weakref``) costs a few milliseconds to import.
Those modules use ``log = get_logger(__name__)`` instead of
``logging.getLogger(__name__)``: the same logger, created on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging


class _LazyLogger:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self._name)
        return getattr(logger, attr)


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, resolved on first use."""
    return _LazyLogger(name)  # type: ignore[return-value]
