"""What can go wrong at the acquisition edge, split by what the watcher does about it.

:class:`AcquisitionInputError` and its subclasses are permanent (bad input): one clear log line and a
``ProcessingFailed`` event for that file, and the watcher carries on. :class:`TransferError` is
transient: the copy is retried with backoff a bounded number of times.
"""

from __future__ import annotations

__all__ = [
    "AcquisitionInputError",
    "CorruptMovieError",
    "InvalidAcquisitionValueError",
    "MdocParseError",
    "MissingMovieError",
    "MissingSessionValueError",
    "NotATiltSeriesError",
    "PathOutsideRootError",
    "TransferError",
]


class AcquisitionInputError(Exception):
    """Bad input from the microscope side; retrying cannot help."""


class MdocParseError(AcquisitionInputError):
    """The ``.mdoc`` cannot be parsed, or a section lacks a field the pipeline needs."""


class InvalidAcquisitionValueError(AcquisitionInputError):
    """A value from the microscope cannot be true: not finite, physically absurd, or a NUL byte in a name.

    The message names the field of the event it would have gone into and the reason.
    """


class CorruptMovieError(AcquisitionInputError):
    """The movie's header is unreadable or disagrees with the file's size or the mdoc's frame count."""


class MissingMovieError(AcquisitionInputError):
    """The mdoc names a movie that never arrived."""


class NotATiltSeriesError(MdocParseError):
    """The ``.mdoc`` is a frame set, a montage or anything else but a tilt series: nothing is emitted."""


class MissingSessionValueError(MdocParseError):
    """A value the series needs (tilt axis, voltage, pixel size) is neither in the mdoc nor in the session
    parameters; the series waits until an operator sets it."""


class PathOutsideRootError(AcquisitionInputError):
    """A path (or a symbolic link) resolves outside the data root."""


class TransferError(Exception):
    """Copying to facility storage failed (I/O error, or the copy's checksum differs); transient."""
