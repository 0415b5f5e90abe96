"""The runtime every processing service shares: errors, data roots, the consumer-group loop."""

from tiltstream.processors.runtime.atomic import atomic_path
from tiltstream.processors.runtime.attempts import JobOutcome, RetryPolicy, run_attempts
from tiltstream.processors.runtime.data_roots import DataRoots
from tiltstream.processors.runtime.defaults import with_defaults
from tiltstream.processors.runtime.errors import (
    CorruptInputError,
    FailureKind,
    ImpossibleParametersError,
    InputReadTimeoutError,
    NotRegularFileError,
    PathOutsideRootError,
    PermanentError,
    ProcessorError,
    ProgramUnavailableError,
    TransientError,
    is_transient,
)
from tiltstream.processors.runtime.processor import Job, Output, Processor
from tiltstream.processors.runtime.run import run_service
from tiltstream.processors.runtime.service import ProcessorService
from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = [
    "CorruptInputError",
    "DataRoots",
    "FailureKind",
    "ImpossibleParametersError",
    "InputReadTimeoutError",
    "Job",
    "JobOutcome",
    "NotRegularFileError",
    "Output",
    "PathOutsideRootError",
    "PermanentError",
    "Processor",
    "ProcessorError",
    "ProcessorService",
    "ProcessorSettings",
    "ProgramUnavailableError",
    "RetryPolicy",
    "TransientError",
    "atomic_path",
    "is_transient",
    "run_attempts",
    "run_service",
    "with_defaults",
]
