"""A function running on a daemon thread, with its result collected later.

Daemon threads (not an executor) so that a job abandoned at the drain deadline cannot keep the
process alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Background"]

T = TypeVar("T")


class Background(Generic[T]):
    """Run ``function`` now on a daemon thread named ``name``."""

    def __init__(self, function: Callable[[], T], name: str) -> None:
        self._function = function
        self._result: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._function()
        except BaseException as exc:  # handed to whoever collects the result
            self._error = exc
        finally:
            self._done.set()

    def done(self) -> bool:
        """True once the function returned or raised."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds; True when done."""
        return self._done.wait(timeout)

    def result(self) -> T:
        """The return value (waits for it); re-raises what the function raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
