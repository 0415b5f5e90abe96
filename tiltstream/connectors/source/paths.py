"""Data roots: files are named ``{root, path}`` and nothing outside a root is ever touched."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from tiltstream.connectors.source.errors import PathOutsideRootError

__all__ = ["DataRoot"]


class DataRoot:
    """A named mount point; :meth:`check` refuses paths that resolve outside it (``..``, symlinks).

    Parameters
    ----------
    name
        The root's name in events, e.g. ``raw``.
    directory
        Its mount point on this machine.
    """

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory.resolve()

    def check(self, path: Path) -> Path:
        """The fully resolved ``path``; raise :class:`PathOutsideRootError` when it leaves the root."""
        resolved = Path(os.path.realpath(path))
        if not resolved.is_relative_to(self.directory):
            raise PathOutsideRootError(f"{path} resolves to {resolved}, outside data root {self.directory}")
        return resolved

    def relative(self, path: Path) -> str:
        """POSIX path of ``path`` relative to the root (checked)."""
        return PurePosixPath(self.check(path).relative_to(self.directory)).as_posix()

    def data_path(self, path: Path) -> dict[str, str]:
        """The ``DataPath`` value ``{"root": name, "path": relative}`` of ``path`` (checked)."""
        return {"root": self.name, "path": self.relative(path)}

    def resolve(self, relative: str) -> Path:
        """The mount-point path of a relative path from an event (checked: never absolute, no ``..``)."""
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts:
            raise PathOutsideRootError(f"{relative!r} is not a plain relative path")
        return self.check(self.directory / pure)
