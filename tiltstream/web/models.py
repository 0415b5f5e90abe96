"""The JSON API's response models (they document the API in FastAPI's OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = [
    "DownloadView",
    "Failure",
    "SeriesDetail",
    "SeriesSummary",
    "SessionView",
    "TiltView",
    "TomogramView",
    "VolumeView",
]


class SeriesSummary(BaseModel):
    """One tilt series on the session page: its latest state and counts."""

    name: str = Field(description="The series' name within the session, e.g. 'Position_1'.")
    tilt_series_id: str = Field(description="The topics' key, '<session>:<name>'.")
    state: str = Field(
        description="'acquiring', 'waiting', 'requested', 'reconstructed', 'denoised' or 'failed'."
    )
    expected_tilts: int | None = Field(None, description="Tilts the mdoc declares, once known.")
    acquired_tilts: int = Field(description="Tilts acquired.")
    corrected_tilts: int = Field(description="Tilts motion-corrected.")
    ctf_tilts: int = Field(description="Tilts with a CTF estimate.")
    failed_tilts: int = Field(0, description="Tilts whose processing failed for good.")
    excluded_tilts: int = Field(0, description="Tilts left out of the latest reconstruction.")
    used_tilts: int | None = Field(None, description="Tilts in the latest reconstruction, once requested.")
    latest_version: int = Field(0, description="Version of the latest reconstruction (0: none yet).")
    last_tilt_at: datetime | None = Field(None, description="When the latest tilt was acquired (UTC).")
    updated_at: datetime | None = Field(None, description="When this state was reached (UTC).")
    message: str | None = Field(None, description="Why the series failed or what it waits for.")
    central_slice_url: str | None = Field(None, description="The tomogram's central slice (PNG), if any.")


class SessionView(BaseModel):
    """A session's tilt series, ISPyB's rows merged with the live status topic."""

    session: str = Field(description="The visit, e.g. 'cm40000-1'.")
    microscope: str | None = Field(None, description="Where it was collected (ISPyB's beamline name).")
    series: list[SeriesSummary]
    live: bool = Field(description="Whether the status topic is being followed (updates stream in).")


class TiltView(BaseModel):
    """One tilt of a series: its results and, once reconstructed, whether it was used."""

    number: int = Field(description="Acquisition order, from 1.")
    tilt_angle_degrees: float | None = None
    acquired_at: datetime | None = None
    total_motion_angstroms: float | None = None
    average_motion_per_frame_angstroms: float | None = None
    defocus_micrometres: float | None = Field(None, description="Mean of the two defoci.")
    astigmatism_angstroms: float | None = None
    fit_resolution_angstroms: float | None = None
    fit_score: float | None = None
    refined_tilt_angle_degrees: float | None = None
    alignment_residual_angstroms: float | None = Field(
        None, description="Shift error against the reprojection of the other tilts (ISPyB's residualError)."
    )
    alignment_correlation: float | None = Field(
        None, description="Best normalised correlation with a neighbour in angle: the alignment's confidence."
    )
    excluded: bool | None = Field(None, description="Left out of the latest reconstruction (None: not yet).")
    exclusion_reason: str | None = Field(
        None,
        description="Why: the command's reason ('motion', 'ctf-fit', ...) or the alignment's "
        "('alignment-outlier').",
    )
    micrograph_url: str | None = Field(None, description="Motion-corrected micrograph preview (PNG).")
    power_spectrum_url: str | None = Field(None, description="Power spectrum with the CTF fit (PNG).")
    drift_plot_url: str | None = Field(None, description="Frame drift plot (PNG).")


class VolumeView(BaseModel):
    """A volume that can be browsed slice by slice."""

    kind: str = Field(description="'raw' or 'denoised'.")
    depth: int = Field(description="Slices along z.")
    slice_url_template: str = Field(description="Address of slice '{z}' (PNG).")


class DownloadView(BaseModel):
    """A file of the series offered for download (to the session's token holder)."""

    kind: str = Field(description="tomogram.mrc, denoised.mrc, aligned-stack.mrc, alignment.xf, ...")
    file_name: str = Field(description="The file's own name, as the browser saves it.")
    size_bytes: int
    url: str


class TomogramView(BaseModel):
    """The current tomogram of a series and its previews."""

    version: int | None = None
    size_x_pixels: int | None = None
    size_y_pixels: int | None = None
    size_z_pixels: int | None = None
    pixel_spacing_angstroms: float | None = None
    tilt_angle_offset_degrees: float | None = None
    global_alignment_quality: float | None = None
    fsc_resolution_angstroms: float | None = Field(
        None, description="Where the half tomograms' FSC falls below 0.143 (from the reconstruction's event)."
    )
    half_tomograms_from: str | None = Field(None, description="'frames' (even/odd frame sums) or 'tilts'.")
    central_slice_url: str | None = None
    xy_projection_url: str | None = None
    xz_projection_url: str | None = None
    alignment_plot_url: str | None = None
    volumes: list[VolumeView] = Field(default_factory=list, description="Raw and denoised, where readable.")
    downloads: list[DownloadView] = Field(default_factory=list, description="The files that exist now.")
    relion_project_url: str | None = Field(
        None, description="A zip of the session's RELION 5 project (its star files), where one is written."
    )


class SeriesDetail(BaseModel):
    """Everything the tilt-series page shows."""

    session: str
    summary: SeriesSummary
    tilts: list[TiltView]
    ctf_plot_url: str = Field(description="Defocus and fit resolution against tilt angle (SVG).")
    tomogram: TomogramView | None = None


class Failure(BaseModel):
    """Something that failed, why, and the command an operator runs about it."""

    source: str = Field(description="'processing' (ISPyB), 'status' or 'dead-letter'.")
    series: str | None = Field(None, description="The series' name, when known.")
    stage: str | None = Field(None, description="motioncorr, ctf, reconstruct, denoise, or the group.")
    failed_at: str | None = None
    error: str = Field(description="What went wrong, as recorded.")
    command: str | None = Field(None, description="What an operator runs to redo the work.")
    note: str | None = Field(None, description="How to use the command.")
