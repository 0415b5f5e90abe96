"""Event paths (a data-root name and a relative path) as the facility sees them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from tiltstream.connectors.ispyb.errors import RecordRejectedError
from tiltstream.streams.events import DataPath

__all__ = ["facility_path"]


def facility_path(data_path: DataPath | None, roots: Mapping[str, str]) -> str | None:
    """``DataPath(root="raw", path="a/b.tiff")`` -> ``<mount of raw>/a/b.tiff`` (``None`` stays ``None``).

    Raises
    ------
    RecordRejectedError
        For a root without a mount point, an absolute path, or one that climbs out with ``..``.
    """
    if data_path is None:
        return None
    root, relative = data_path.root, PurePosixPath(data_path.path)
    if root not in roots:
        raise RecordRejectedError(f"no mount point for data root {root!r} (set TILTSTREAM_ISPYB_ROOTS)")
    if relative.is_absolute() or ".." in relative.parts:
        raise RecordRejectedError(f"path {str(relative)!r} of root {root!r} leaves its root")
    return str(PurePosixPath(roots[root]) / relative)
