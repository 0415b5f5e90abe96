"""The names of a reconstruction's files: ``<name><suffix>`` side by side in the series' folder."""

from __future__ import annotations

__all__ = ["FILE_SUFFIXES"]

#: Suffix of each file by the event field that names it (``<name>`` is the series' name). The web view
#: finds the alignment files beside the tomogram by them.
FILE_SUFFIXES: dict[str, str] = {
    "tomogram": ".mrc",
    # the half tomograms (of the even and odd frames, or alternating tilts), beside the tomogram
    "tomogram_even": "_even.mrc",
    "tomogram_odd": "_odd.mrc",
    "aligned_stack": "_aligned.mrc",
    "central_slice": "_slice.png",
    "xy_projection": "_xy.png",
    "xz_projection": "_xz.png",
    "alignment_plot": "_alignment.png",
    "imod_xf": ".xf",
    "imod_tlt": ".tlt",
    "alignment_file": ".aln",
}
