"""What happens to a failed job is decided by the type of its exception.

* :class:`TransientError` (and :class:`OSError`, :class:`MemoryError`, torch's out-of-memory errors):
  retried a bounded number of times with exponential backoff, then a terminal ``ProcessingFailed``
  with ``failure_kind='retries-exhausted'``.
* :class:`PermanentError` and its subclasses (corrupt input, a path outside the data roots, a file
  that is not a regular file, impossible parameters), and
  :class:`ProgramUnavailableError` (a facility program that is missing or not executable, the
  same for MotionCor, CTFFIND and AreTomo), and
  :class:`~tiltstream.streams.errors.InvalidEventError` (an output event whose values cannot be
  true): a ``ProcessingFailed`` with ``failure_kind='permanent'`` at once.
* Anything else is an unexpected error: treated as transient, so it is retried and then given up on;
  nothing is retried forever.
"""

from __future__ import annotations

from enum import StrEnum

from tiltstream.streams.errors import InvalidEventError

__all__ = [
    "CorruptInputError",
    "FailureKind",
    "ImpossibleParametersError",
    "InputReadTimeoutError",
    "NotRegularFileError",
    "PathOutsideRootError",
    "PermanentError",
    "ProcessorError",
    "ProgramUnavailableError",
    "TransientError",
    "is_transient",
]


class FailureKind(StrEnum):
    """``ProcessingFailed.failure_kind``."""

    PERMANENT = "permanent"
    RETRIES_EXHAUSTED = "retries-exhausted"


class ProcessorError(Exception):
    """Base of the errors a processor raises on purpose."""


class TransientError(ProcessorError):
    """May clear by itself (I/O hiccup, device busy or out of memory): retry with backoff."""


class PermanentError(ProcessorError):
    """Will fail the same way every time: give up at once with a ``ProcessingFailed``."""


class CorruptInputError(PermanentError):
    """The input file is unreadable, truncated or not what the event says it is."""


class PathOutsideRootError(PermanentError):
    """A data path names an unknown root or resolves outside its root ('..', absolute, symlink out)."""


class NotRegularFileError(PermanentError):
    """A data path names a FIFO, a device, a socket or a directory: only regular files are read."""


class InputReadTimeoutError(TransientError):
    """Reading an input file took longer than the service's ``read_timeout_seconds`` (a hung mount)."""


class ProgramUnavailableError(PermanentError):
    """An external program (MotionCor2/3, CTFFIND4/5, AreTomo2/3) is missing or not executable.

    Retrying cannot install it: the job fails at once and names the program and the setting.
    """


class ImpossibleParametersError(PermanentError):
    """The event's parameters cannot be processed (zero frames, non-positive pixel size, ...)."""


# Out-of-memory errors of the GPU stack, recognised by name so the runtime never imports torch.
_TRANSIENT_NAMES = frozenset({"OutOfMemoryError", "AcceleratorError", "CudaError"})


def is_transient(error: BaseException) -> bool:
    """True when ``error`` deserves a retry (see the module docstring)."""
    if isinstance(error, PermanentError | InvalidEventError):
        return False
    if isinstance(error, TransientError | OSError | MemoryError):
        return True
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(error).__mro__):
        return True
    if isinstance(error, RuntimeError) and "out of memory" in str(error).lower():
        return True
    return not isinstance(error, ProcessorError)
