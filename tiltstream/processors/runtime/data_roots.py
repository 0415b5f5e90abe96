"""Data roots: events name files as ``{"root": name, "path": relative}``; services map names to mounts.

A path is resolved only inside its root: absolute paths, ``..`` components and symbolic links that
lead out of the root are refused with :class:`PathOutsideRootError` (a permanent failure). Inputs are
read only from regular files (:meth:`DataRoots.input_file`, :meth:`DataRoots.open_input`): a FIFO,
device, socket or directory is refused with :class:`NotRegularFileError`, also permanent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from tiltstream.processors.runtime.errors import PathOutsideRootError
from tiltstream.processors.runtime.input_files import check_regular, open_regular
from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = ["DataRoots"]


class DataRoots:
    """Root names to mount points.

    Parameters
    ----------
    roots
        e.g. ``{"raw": Path("/data/raw"), "processed": Path("/data/processed")}``.
    read_timeout_seconds
        Reads from a file opened with :meth:`open_input` fail after this long (``None``: no limit).
    """

    def __init__(self, roots: Mapping[str, Path | str], *, read_timeout_seconds: float | None = None) -> None:
        self.roots = {name: Path(path) for name, path in roots.items()}
        self.read_timeout_seconds = read_timeout_seconds

    @classmethod
    def from_settings(cls, settings: ProcessorSettings) -> DataRoots:
        """The roots and read timeout of a service's settings."""
        return cls(settings.data_roots, read_timeout_seconds=settings.read_timeout_seconds)

    @staticmethod
    def where(data_path: Mapping[str, Any]) -> str:
        """How messages name a DataPath: ``root:path``."""
        return f"{data_path['root']}:{data_path['path']}"

    def mount(self, root: str) -> Path:
        """The mount point of ``root``, fully resolved."""
        try:
            return self.roots[root].resolve()
        except KeyError:
            known = ", ".join(sorted(self.roots)) or "none"
            raise PathOutsideRootError(f"unknown data root {root!r} (configured: {known})") from None

    @staticmethod
    def _checked(relative: str) -> PurePosixPath:
        pure = PurePosixPath(relative)
        if not relative or pure.is_absolute() or relative.startswith("\\") or ":" in pure.parts[0]:
            raise PathOutsideRootError(f"data path {relative!r} is not relative")
        if any(part == ".." for part in pure.parts):
            raise PathOutsideRootError(f"data path {relative!r} contains '..'")
        return pure

    def resolve(self, data_path: Mapping[str, Any]) -> Path:
        """The local path of a DataPath ``{"root", "path"}``, guaranteed inside its root.

        Raises
        ------
        PathOutsideRootError
            Unknown root, absolute path, ``..``, or a symbolic link leading outside the root.
        """
        root = str(data_path["root"])
        relative = str(data_path["path"])
        mount = self.mount(root)
        candidate = mount.joinpath(*self._checked(relative).parts)
        real = Path(os.path.realpath(candidate))
        if real != mount and mount not in real.parents:
            raise PathOutsideRootError(f"data path {root}:{relative} resolves outside its root to {real}")
        return real

    def input_file(self, data_path: Mapping[str, Any]) -> Path:
        """:meth:`resolve`, then refuse anything but a regular file.

        Raises
        ------
        PathOutsideRootError
            As :meth:`resolve`.
        NotRegularFileError
            A FIFO, device, socket or directory, named with its kind.
        FileNotFoundError
            Nothing is there (transient unless the caller knows better).
        """
        return check_regular(self.resolve(data_path), self.where(data_path))

    def open_input(self, data_path: Mapping[str, Any]) -> IO[bytes]:
        """The regular file of ``data_path``, open for reading with the read timeout (use in ``with``).

        The file is opened without blocking and checked again on the open descriptor, so a FIFO put in
        place after :meth:`input_file` looked is refused, never waited on.
        """
        return open_regular(
            self.input_file(data_path), where=self.where(data_path), timeout_seconds=self.read_timeout_seconds
        )

    def output(self, root: str, relative: str) -> tuple[dict[str, str], Path]:
        """A DataPath for a file to write and its local path (parent folders created).

        Parameters
        ----------
        root
            Root name of the outputs, e.g. ``"processed"``.
        relative
            Deterministic POSIX path under the root, so a redone job overwrites its own output.
        """
        data_path = {"root": root, "path": str(self._checked(relative))}
        local = self.resolve(data_path)
        local.parent.mkdir(parents=True, exist_ok=True)
        # resolve again: a folder created above must not be a link out of the root
        return data_path, self.resolve(data_path)
