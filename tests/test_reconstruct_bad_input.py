"""Series the reconstruction cannot make (issue 19's bad input): a clear permanent error, nothing written.

Every tilt excluded, one tilt left, a micrograph that is not finite: the processor refuses with a
``PermanentError`` naming why (the runtime turns it into a ``ProcessingFailed``, which ISPyB records:
``tests/test_ispyb_attempts.py``), and the session's RELION project and IMOD files stay exactly as they
were: the series that did reconstruct keep their rows, the failed one has no file anywhere.
"""

from __future__ import annotations

import dataclasses
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reconstruct_fixtures import SimulatedSeries, reconstruction_request, simulate_series

from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
from tiltstream.processors.runtime import CorruptInputError, ImpossibleParametersError, Job, PermanentError

#: An alignment program that fails as AreTomo does without a usable GPU or alignment: a message, exit 3.
FAILING_ALIGNMENT = "import sys\nprint('alignment failed: no usable tilts')\nsys.exit(3)\n"


@pytest.fixture(scope="module")
def series() -> SimulatedSeries:
    return simulate_series(seed=5, size_pixels=64, tilt_count=9)


def _processor(data: Path, **settings: Any) -> ReconstructionProcessor:
    return ReconstructionProcessor(
        ReconstructionSettings(
            data_roots={"processed": data / "processed"}, device="cpu", tile_sidelength_pixels=32, **settings
        )
    )


def _run(data: Path, request: dict[str, Any], **settings: Any) -> None:
    processor = _processor(data, **settings)
    processor.process(
        Job(value=request, topic="t", partition=0, offset=0, attempt=1), processor.load(request)
    )


def _failing_aretomo(directory: Path) -> str:
    script = directory / "bin" / "AreTomo2"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\n{FAILING_ALIGNMENT}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("case", "error", "reason"),
    [
        ("every tilt excluded", ImpossibleParametersError, "0 usable tilts"),
        ("one tilt left", ImpossibleParametersError, "1 usable tilts"),
        ("a micrograph not finite", CorruptInputError, "not finite"),
    ],
)
def test_a_series_that_cannot_be_reconstructed_leaves_the_project_as_it_was(
    series: SimulatedSeries, tmp_path: Path, case: str, error: type[PermanentError], reason: str
) -> None:
    _run(tmp_path, reconstruction_request(series, tmp_path, name="Position_1", binning=2))
    before = _files(tmp_path / "processed")
    assert any("relion" in name for name in before)  # the good series is in the project
    count = len(series.tilt_angles_degrees)
    excluded = {
        "every tilt excluded": dict.fromkeys(range(count), "dark"),
        "one tilt left": dict.fromkeys(range(1, count), "operator"),
        "a micrograph not finite": {},
    }[case]
    broken = series
    if case == "a micrograph not finite":
        images = series.images.copy()
        images[3, 10:20, 10:20] = np.nan
        broken = dataclasses.replace(series, images=images)
    request = reconstruction_request(broken, tmp_path, name="Position_2", binning=2, excluded=excluded)
    inputs = set(_files(tmp_path / "processed")) - set(before)  # Position_2's micrographs
    with pytest.raises(error, match=reason):
        _run(tmp_path, request)
    after = _files(tmp_path / "processed")
    assert set(after) - set(before) == inputs  # nothing written for the failed series, no temporary file
    assert {name: after[name] for name in before} == before  # the project and the good series unchanged


def test_a_failed_alignment_leaves_the_project_as_it_was(series: SimulatedSeries, tmp_path: Path) -> None:
    """The alignment program fails (AreTomo's exit status and message): a permanent error with its
    message; the project and the good series unchanged, no file of the failed one kept."""
    _run(tmp_path, reconstruction_request(series, tmp_path, name="Position_1", binning=2))
    before = _files(tmp_path / "processed")
    request = reconstruction_request(series, tmp_path, name="Position_2", binning=2)
    inputs = set(_files(tmp_path / "processed")) - set(before)
    aretomo = {"backend": "aretomo2", "aretomo_executable": _failing_aretomo(tmp_path)}
    with pytest.raises(PermanentError, match="exited 3: alignment failed"):
        _run(tmp_path, request, **aretomo)
    after = _files(tmp_path / "processed")
    assert set(after) - set(before) == inputs
    assert {name: after[name] for name in before} == before
