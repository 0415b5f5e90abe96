"""Settings of the reconstruction service (``TILTSTREAM_RECONSTRUCT_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = ["ReconstructionSettings"]


class ReconstructionSettings(ProcessorSettings):
    """Reconstruction: consumes ``tiltseries.reconstruction-requested``, emits ``tomogram.reconstructed``.

    Binning and thickness come from each request; ``binning_override`` replaces the request's binning
    when set. ``refine_tilt_axis`` searches the axis angle within ``axis_search_degrees`` of the
    microscope's value by stretched cross-correlation of tilt pairs (on by default: within 1° of the
    truth on the simulator's 64² binned series, see ``tests/test_reconstruct_alignment.py``).
    ``refine_tilt_offset`` searches a global tilt-angle offset (the specimen's pre-tilt) within
    ``offset_search_degrees`` by the same stretched correlation; off by default: it finds the plane
    the specimen's features follow, within 0.62° of the truth when they lie in one (the simulator's
    240 Å slab) but up to 2.8° off in its 400 Å slab with a few dozen particles at heights ±80 Å
    (see ``tests/test_reconstruct_tilt_offset.py``).
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_RECONSTRUCT_", frozen=True, extra="ignore")

    group_id: str = "tiltstream-reconstruct"
    drain_deadline_seconds: float = Field(default=600.0, ge=0)
    backend: Literal["builtin", "aretomo2", "aretomo3"] = "builtin"
    binning_override: int | None = Field(default=None, ge=1, le=16)
    refine_tilt_axis: bool = True
    axis_search_degrees: float = Field(default=3.0, gt=0, le=20)
    refine_tilt_offset: bool = False
    offset_search_degrees: float = Field(default=5.0, gt=0, le=20)
    tile_sidelength_pixels: int = Field(default=128, ge=16, le=1024)
    #: Builtin backend: ``filtered`` (exact-weighted filtered back-projection, one sparse product for
    #: all rows) or ``torch-tomogram`` (the library's Fourier-insertion WBP in tiles, the reference).
    back_projection: Literal["filtered", "torch-tomogram"] = "filtered"
    #: Builtin backend: reconstruct the half tomograms from the even- and odd-frame sums the request
    #: names for every used tilt (motion correction's ``frame_halves``), written beside the full one as
    #: ``<name>_even.mrc`` / ``<name>_odd.mrc``: Noise2Noise (cryoCARE) pairs, and their FSC gives the
    #: tomogram's resolution estimate (``fsc_resolution_angstroms``).
    frame_half_tomograms: bool = True
    #: Builtin backend: where the request names no frame halves, make the half tomograms from the even
    #: and the odd tilts (in tilt order) instead; their FSC then measures the agreement of two sets of
    #: tilts (the event says ``half_tomograms_from = 'tilts'``).
    half_tomograms: bool = False
    #: Builtin backend: phase-flip each tilt with its CTF estimate and the defocus gradient across the
    #: tilted specimen (bands of ``ctf_band_angstroms`` in height); tilts without estimates: no flip.
    correct_ctf: bool = True
    #: The request's thickness is the depth reconstructed; the specimen's thickness is then estimated
    #: from the tomogram's z profile (``thickness``), reported, and the volume cut to it plus
    #: ``depth_margin_fraction`` of it on each side.
    depth_from_thickness: bool = True
    depth_margin_fraction: float = Field(default=0.25, ge=0, le=2)
    ctf_band_angstroms: float = Field(default=50.0, gt=0)
    minimum_tilts: int = Field(default=5, ge=2)
    #: Builtin backend: leave out a tilt the alignment cannot follow (reason ``alignment-outlier``,
    #: ``reconstruct.outliers``): its best normalised correlation with a neighbour in angle falls more
    #: than ``outlier_correlation_mads`` robust deviations and below ``outlier_correlation_fraction``
    #: of the running median of the series', or its residual against the reprojection of the other
    #: tilts exceeds ``outlier_residual_angstroms`` and the series' median by ``outlier_residual_mads``
    #: robust deviations; the others are aligned again without it. At most ``outlier_max_fraction`` of
    #: the tilts are left out (the worst).
    reject_alignment_outliers: bool = True
    outlier_correlation_mads: float = Field(default=6.0, gt=0)
    outlier_correlation_fraction: float = Field(default=0.5, gt=0, le=1)
    outlier_residual_angstroms: float = Field(default=100.0, gt=0)
    outlier_residual_mads: float = Field(default=6.0, gt=0)
    outlier_max_fraction: float = Field(default=0.25, ge=0, lt=1)
    output_folder: str = "tomograms"
    png_max_pixels: int = Field(default=1024, ge=64)
    #: Keep the session's RELION 5 project (``<session>/relion``) up to date (see ``tiltstream.relion``).
    relion_project: bool = True
    aretomo_executable: str = "AreTomo2"
    aretomo_gpu: str = "0"
    aretomo_timeout_seconds: float = Field(default=3600.0, gt=0)
    #: ``-CorrCTF``: AreTomo corrects the CTF of the tomogram (local phase flipping).
    aretomo_correct_ctf: bool = True
    #: ``-DarkTol``: a tilt darker than this fraction of the series' mean is dropped.
    aretomo_dark_tolerance: float = Field(default=0.7, gt=0, lt=1)
    #: ``-Patch``/``-AtPatch``: local alignment on N x N patches; 0 aligns globally only.
    aretomo_patches: int = Field(default=0, ge=0, le=16)
