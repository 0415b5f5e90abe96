"""Finding a movie's detector references: its gain reference (named in the session parameters, named by
the mdoc, or SerialEM's ``CountRef_*`` file beside the frames) and the defect file the session parameters
name."""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING

from tiltstream.connectors.source.errors import InvalidAcquisitionValueError, PathOutsideRootError

if TYPE_CHECKING:
    from tiltstream.connectors.source.series import SeriesState
    from tiltstream.connectors.source.watcher import Watcher

__all__ = ["GAIN_SUFFIXES", "find_defect_file", "find_gain_reference"]

#: Gain reference formats: MRC, TIFF, Falcon's TIFF-like ``.gain``, Gatan's ``.dm4``.
GAIN_SUFFIXES = (".mrc", ".tif", ".tiff", ".gain", ".dm4")


def _count_refs(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if e.name.startswith("CountRef_") and Path(e.name).suffix.lower() in GAIN_SUFFIXES and e.is_file()
    ]


def find_gain_reference(watcher: Watcher, series: SeriesState, mdoc_gain_name: str | None) -> Path | None:
    """The gain reference for the series' movies, checked to lie under the data root, or ``None``.

    In order: the session parameters' ``gain_reference`` (relative to the session directory), the mdoc's
    ``GainReference`` file name looked for beside the mdoc and in the frames folders, then the newest
    ``CountRef_*`` file there (SerialEM writes one per camera setting).
    """
    folders = [series.mdoc_path.parent / sub for sub in watcher.settings.frames_subdirs]
    named = watcher.parameters.gain_reference
    candidates: list[Path] = []
    if named:
        candidates.append(series.mdoc_path.parent / named)
    if mdoc_gain_name:
        name = PureWindowsPath(mdoc_gain_name).name
        candidates += [folder / name for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return _checked(watcher, candidate)
    refs = [ref for folder in folders for ref in _count_refs(folder)]
    if refs:
        return _checked(watcher, max(refs, key=lambda p: (p.stat().st_mtime_ns, p.name)))
    return None


def _checked(watcher: Watcher, path: Path) -> Path | None:
    try:
        return watcher.source_root.check(path)
    except PathOutsideRootError:
        return None


def find_defect_file(watcher: Watcher, series: SeriesState) -> Path | None:
    """The defect file the session parameters name (relative to the session directory), or ``None``.

    Raises
    ------
    InvalidAcquisitionValueError
        When the named file is not there or lies outside the data root: correcting without the defects the
        operator asked for would pass unnoticed.
    """
    named = watcher.parameters.defect_file
    if not named:
        return None
    path = series.mdoc_path.parent / named
    try:
        checked = watcher.source_root.check(path)
    except PathOutsideRootError as exc:
        raise InvalidAcquisitionValueError(f"defect_file: {named!r} lies outside the data root") from exc
    if not checked.is_file():
        raise InvalidAcquisitionValueError(
            f"defect_file: {named!r} (session parameters) is not a file in {path.parent}"
        )
    return checked
