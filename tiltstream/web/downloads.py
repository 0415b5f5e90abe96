"""What a session's token holder may download: a series' volumes and alignment files, and the RELION project.

Files are asked for by what they are (``downloads/alignment.xf``), never by a path from the request.
The tomogram's path comes from ISPyB; the files beside it follow the reconstruction's names
(:data:`~tiltstream.processors.reconstruct.file_names.FILE_SUFFIXES`), and the session's RELION 5
project lies at ``<session>/relion`` under the same output root as the tomogram's
``<session>/<output folder>/<series>/v<version>/`` (:func:`~tiltstream.relion.project.relion_project_folder`).
Every path is resolved through :class:`~tiltstream.web.files.DataFiles` before anything is read.
"""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum
from pathlib import Path, PurePosixPath

from tiltstream.processors.reconstruct.file_names import FILE_SUFFIXES
from tiltstream.processors.runtime.output_paths import folder_name
from tiltstream.relion.project import PIPELINE_STAR
from tiltstream.web.files import DataFiles, FileRefusedError
from tiltstream.web.queries import SeriesRows

__all__ = ["Download", "download_path", "readable", "relion_archive", "relion_pipeline_path"]

#: The project's own bookkeeping (one record per series and a lock), not part of a RELION project.
_RECORDS = ".tiltstream"


class Download(StrEnum):
    """The files of a series offered for download."""

    TOMOGRAM = "tomogram.mrc"
    DENOISED = "denoised.mrc"
    ALIGNED_STACK = "aligned-stack.mrc"
    IMOD_XF = "alignment.xf"
    IMOD_TLT = "angles.tlt"
    ARETOMO_ALN = "alignment.aln"
    TOMOGRAM_EVEN = "tomogram-even.mrc"
    TOMOGRAM_ODD = "tomogram-odd.mrc"


#: The downloads found beside the tomogram, by the reconstruction's event field.
_BESIDE = {
    Download.ALIGNED_STACK: "aligned_stack",
    Download.IMOD_XF: "imod_xf",
    Download.IMOD_TLT: "imod_tlt",
    Download.ARETOMO_ALN: "alignment_file",
    Download.TOMOGRAM_EVEN: "tomogram_even",
    Download.TOMOGRAM_ODD: "tomogram_odd",
}


def download_path(rows: SeriesRows, kind: Download) -> str | None:
    """The recorded (facility) path of ``kind`` for the series' current tomogram, or ``None``."""
    tomogram = rows.row.tomogram
    volume = tomogram.volumeFile if tomogram is not None else None
    if not volume:
        return None
    if kind is Download.TOMOGRAM:
        return str(volume)
    if kind is Download.DENOISED:
        return rows.processed.get("Denoised")
    stem = str(volume).removesuffix(FILE_SUFFIXES["tomogram"])
    return stem + FILE_SUFFIXES[_BESIDE[kind]]


def relion_pipeline_path(session: str, volume_file: str | None) -> str | None:
    """The ``default_pipeline.star`` of ``session``'s RELION project, found from a tomogram's path.

    The tomogram lies at ``<root>/<session>/<output folder>/<series>/v<version>/``; the project at
    ``<root>/<session>/relion``. ``None`` when no folder above the tomogram is the session's.
    """
    if not volume_file:
        return None
    for parent in PurePosixPath(volume_file).parents:
        if parent.name == folder_name(session):
            return str(parent / "relion" / PIPELINE_STAR)
    return None


def relion_archive(files: DataFiles, pipeline: Path, folder: str) -> bytes:
    """A zip of the RELION project whose ``default_pipeline.star`` is ``pipeline``, under ``folder/``.

    Holds every star file of the project (its job folders and ``default_pipeline.star``), each checked
    to resolve inside the data roots; the micrographs and tomograms they name stay where they are
    (absolute paths on the facility's storage).

    Raises
    ------
    FileRefusedError
        When a star file resolves outside the data roots (a symbolic link out of them).
    """
    project = pipeline.parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(project.rglob("*.star")):
            relative = path.relative_to(project)
            if _RECORDS in relative.parts:
                continue
            local = files.resolve(str(path))
            archive.write(local, f"{folder}/{relative.as_posix()}")
    return buffer.getvalue()


def readable(files: DataFiles, path: str | None) -> Path | None:
    """The local file of ``path`` when it may be served, else ``None``."""
    try:
        return files.resolve(path)
    except FileRefusedError:
        return None
