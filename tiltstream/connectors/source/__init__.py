"""The acquisition source connector: watch a session directory, transfer, parse mdocs, emit events.

``tiltstream watch SESSION_DIR`` emits ``MovieAcquired`` for each complete movie and
``TiltSeriesAcquisitionEnded`` for each finished series; bad input becomes ``ProcessingFailed`` with
stage ``acquisition``. Event ids are deterministic and the watcher reads its own output back on start,
so a restart emits no new facts.
"""

from tiltstream.connectors.source.errors import (
    AcquisitionInputError,
    CorruptMovieError,
    InvalidAcquisitionValueError,
    MdocParseError,
    MissingMovieError,
    PathOutsideRootError,
    TransferError,
)
from tiltstream.connectors.source.mdoc import MdocInfo, MdocTilt, read_mdoc
from tiltstream.connectors.source.settings import SourceSettings
from tiltstream.connectors.source.watcher import Watcher

__all__ = [
    "AcquisitionInputError",
    "CorruptMovieError",
    "InvalidAcquisitionValueError",
    "MdocInfo",
    "MdocParseError",
    "MdocTilt",
    "MissingMovieError",
    "PathOutsideRootError",
    "SourceSettings",
    "TransferError",
    "Watcher",
    "read_mdoc",
]
