"""Which files may be served: only those that resolve inside a configured data root.

Paths come from ISPyB (absolute facility paths) or, for sub-paths, from requests; neither is trusted.
A path is refused when it is relative, has ``..`` components or a NUL byte, or resolves (symbolic links
followed) outside every root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

__all__ = ["DataFiles", "FileRefusedError"]


class FileRefusedError(LookupError):
    """The path is outside the data roots, malformed, or not a regular file."""


class DataFiles:
    """The data roots of the web view.

    Parameters
    ----------
    roots
        Root names to directories, e.g. ``{"processed": Path("/data/processed")}``.
    """

    def __init__(self, roots: Mapping[str, Path]) -> None:
        self.roots = {name: Path(os.path.realpath(path)) for name, path in roots.items()}

    def resolve(self, path: str | None) -> Path:
        """The real local path of the absolute ``path`` (from ISPyB), guaranteed inside a root.

        Raises
        ------
        FileRefusedError
            When ``path`` is missing, not absolute, climbs with ``..``, leaves every root, or is no file.
        """
        if not path:
            raise FileRefusedError("no file recorded")
        if "\x00" in path:
            raise FileRefusedError("path contains a NUL byte")
        pure = PurePosixPath(path)
        if not pure.is_absolute() or ".." in pure.parts:
            raise FileRefusedError(f"{path!r} is not an absolute path without '..'")
        real = Path(os.path.realpath(pure))
        if not any(real == root or root in real.parents for root in self.roots.values()):
            raise FileRefusedError(f"{path!r} is outside the data roots")
        if not real.is_file():
            raise FileRefusedError(f"{path!r} does not exist (yet)")
        return real
