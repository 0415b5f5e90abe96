"""Running a facility program (MotionCor, CTFFIND, AreTomo) as a subprocess: one way for all of them.

A program that is missing or not executable is a :class:`ProgramUnavailableError` (permanent, the
same class for every backend); running past the time limit is transient (a busy GPU may clear).
What a non-zero exit means is the caller's to decide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from tiltstream.processors.runtime.errors import ProgramUnavailableError, TransientError

__all__ = ["find_program", "run_program"]


def find_program(executable: str) -> str:
    """The path of ``executable`` (a name on ``PATH`` or a path), checked to be an executable file.

    Raises
    ------
    ProgramUnavailableError
        Not found, not a regular file, or not executable.
    """
    found = shutil.which(executable)
    if found is None:
        reason = "is not executable" if os.path.exists(executable) else "was not found"
        raise ProgramUnavailableError(f"program {executable!r} {reason}")
    return found


def run_program(
    argv: Sequence[str], timeout_seconds: float, *, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (program first) with ``input_text`` on standard input; output captured as text.

    Raises
    ------
    ProgramUnavailableError
        The program is missing or not executable (also when it vanishes between check and start).
    TransientError
        It ran past ``timeout_seconds``.
    """
    program = find_program(argv[0])
    try:
        return subprocess.run(
            [program, *argv[1:]],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ProgramUnavailableError(f"program {argv[0]!r} could not be started: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"{argv[0]} ran past {timeout_seconds:.0f} s") from exc
