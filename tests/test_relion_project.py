"""The session's RELION 5 project, written by the reconstruction and read back with ``starfile``.

Two series of one session go through the real processor (builtin backend, small series); every
star file is read back and checked against the request and the TomogramReconstructed event, the
aligned per-tilt star against the ``.tlt``/``.xf`` files, and a replay and a version 2 must rewrite
rows, never add them twice.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
from cryoet_alignment.io.aretomo3 import AreTomo3ALN
from cryoet_alignment.io.cryoet_data_portal import Alignment
from cryoet_alignment.io.imod import ImodXF
from reconstruct_fixtures import SimulatedSeries, reconstruction_request, simulate_series

from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
from tiltstream.processors.runtime import Job
from tiltstream.relion.project import JOBS, PIPELINE_STAR, TOMOGRAMS_JOB

EXCLUDED = {0: "dark", 5: "operator"}
DEFOCUS = 30000.0


@pytest.fixture(scope="module")
def series() -> SimulatedSeries:
    return simulate_series(seed=3, size_pixels=128, tilt_count=13)


def _reconstruct(data: Path, request: dict[str, Any]) -> dict[str, Any]:
    settings = ReconstructionSettings(
        data_roots={"processed": data / "processed"}, device="cpu", tile_sidelength_pixels=32
    )
    processor = ReconstructionProcessor(settings)
    job = Job(value=request, topic="t", partition=0, offset=0, attempt=1)
    (output,) = processor.process(job, processor.load(request))
    return output.value


@pytest.fixture(scope="module")
def project(series: SimulatedSeries, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("data")
    noise = np.random.default_rng(4).normal(0, float(series.images.std()), series.images.shape)
    halves = ((series.images / 2 + noise).astype(np.float32), (series.images / 2 - noise).astype(np.float32))
    requests = {
        name: reconstruction_request(
            series, data, name=name, excluded=EXCLUDED, binning=2, defocus_angstroms=DEFOCUS, halves=halves
        )
        for name in ("Position_1", "Position_2")
    }
    events = {name: _reconstruct(data, request) for name, request in requests.items()}
    return {
        "data": data,
        "root": data / "processed" / "cm40000-1" / "relion",
        "requests": requests,
        "events": events,
    }


def _read(path: Path) -> pd.DataFrame:
    table = starfile.read(path, always_dict=True)
    assert len(table) == 1, path
    frame: pd.DataFrame = next(iter(table.values()))
    return frame


def test_every_job_has_its_global_star_listing_each_series(project: dict[str, Any]) -> None:
    root = project["root"]
    for job, star, _, _, _ in JOBS:
        table = _read(root / job / star)
        assert sorted(table["rlnTomoName"]) == ["cm40000-1_Position_1", "cm40000-1_Position_2"]
        for _, row in table.iterrows():
            assert row["rlnTomoTiltSeriesStarFile"] == f"{job}/tilt_series/{row['rlnTomoName']}.star"
            assert (root / row["rlnTomoTiltSeriesStarFile"]).is_file()
            request = project["requests"][row["rlnTomoName"].split("_", 1)[1]]
            assert row["rlnVoltage"] == request["voltage_kv"]
            assert row["rlnSphericalAberration"] == request["spherical_aberration_mm"]
            assert row["rlnAmplitudeContrast"] == request["amplitude_contrast"]
            assert row["rlnMicrographOriginalPixelSize"] == request["pixel_size_angstroms"]
            assert row["rlnTomoTiltSeriesPixelSize"] == request["pixel_size_angstroms"]
            assert row["rlnTomoHand"] == -1


def test_per_tilt_stars_carry_the_request_values(project: dict[str, Any]) -> None:
    root = project["root"]
    request = project["requests"]["Position_1"]
    tilts = sorted(request["tilts"], key=lambda t: t["tilt_angle_degrees"])
    name = "cm40000-1_Position_1"
    imported = _read(root / "Import/job001/tilt_series" / f"{name}.star")
    assert len(imported) == len(tilts)
    assert np.allclose(imported["rlnTomoNominalStageTiltAngle"], [t["tilt_angle_degrees"] for t in tilts])
    assert np.allclose(imported["rlnMicrographPreExposure"], [t["prior_dose_e_per_angstrom2"] for t in tilts])
    assert np.allclose(imported["rlnTomoNominalTiltAxisAngle"], request["tilt_axis_angle_degrees"])
    corrected = _read(root / "MotionCorr/job002/tilt_series" / f"{name}.star")
    data = project["data"] / "processed"
    assert list(corrected["rlnMicrographName"]) == [str(data / t["micrograph"]["path"]) for t in tilts]
    assert all(Path(p).is_file() for p in corrected["rlnMicrographName"])
    for column, field in (
        ("rlnMicrographNameEven", "micrograph_even"),
        ("rlnMicrographNameOdd", "micrograph_odd"),
    ):
        assert list(corrected[column]) == [str(data / t[field]["path"]) for t in tilts]
        assert all(Path(p).is_file() for p in corrected[column])
    ctf = _read(root / "CtfFind/job003/tilt_series" / f"{name}.star")
    assert np.allclose(ctf["rlnDefocusU"], [t["defocus_u_angstroms"] for t in tilts])
    assert np.allclose(ctf["rlnDefocusV"], [t["defocus_v_angstroms"] for t in tilts])
    assert np.allclose(ctf["rlnCtfAstigmatism"], 300.0)
    assert np.allclose(ctf["rlnDefocusAngle"], 30.0)
    selected = _read(root / "ExcludeTiltImages/job004/tilt_series" / f"{name}.star")
    kept = [t for t in tilts if not t["excluded"]]
    assert len(selected) == len(tilts) - len(EXCLUDED)
    assert np.allclose(selected["rlnTomoNominalStageTiltAngle"], [t["tilt_angle_degrees"] for t in kept])


def _read_xf(path: Path) -> np.ndarray:
    return np.loadtxt(path).reshape(-1, 6)


def test_aligned_star_agrees_with_the_tlt_and_xf_files(project: dict[str, Any]) -> None:
    root, data = project["root"], project["data"] / "processed"
    event = project["events"]["Position_1"]
    request = project["requests"]["Position_1"]
    aligned = _read(root / "AlignTiltSeries/job005/tilt_series/cm40000-1_Position_1.star")
    tlt = np.loadtxt(data / event["imod_tlt"]["path"])
    xf = _read_xf(data / event["imod_xf"]["path"])
    assert len(aligned) == len(tlt) == len(xf)
    assert np.allclose(aligned["rlnTomoYTilt"], tlt, atol=0.01)
    assert np.allclose(aligned["rlnTomoXTilt"], 0.0)
    pixel = request["pixel_size_angstroms"]
    for (_, row), line in zip(aligned.iterrows(), xf, strict=True):
        a = line[:4].reshape(2, 2)
        # the .xf rotates by -ZRot (bringing the tilt axis onto y)
        assert math.isclose(math.degrees(math.atan2(-a[1, 0], a[0, 0])), row["rlnTomoZRot"], abs_tol=0.01)
        specimen = np.linalg.inv(a) @ -line[4:]  # the specimen's displacement in the raw image, pixels
        assert np.allclose(
            specimen * pixel, [row["rlnTomoXShiftAngst"], row["rlnTomoYShiftAngst"]], atol=0.01
        )
    by_movie = {a["movie_id"]: a for a in event["tilt_alignments"] if a["included"]}
    assert len(by_movie) == len(aligned)


def test_tomograms_star_names_the_tomogram_and_its_size(project: dict[str, Any]) -> None:
    root, data = project["root"], project["data"] / "processed"
    table = _read(root / TOMOGRAMS_JOB[0] / TOMOGRAMS_JOB[1]).set_index("rlnTomoName")
    event = project["events"]["Position_2"]
    row = table.loc["cm40000-1_Position_2"]
    assert row["rlnTomoReconstructedTomogram"] == str(data / event["tomogram"]["path"])
    assert row["rlnTomoTomogramBinning"] == event["binning"] == 2
    assert row["rlnTomoSizeX"] == event["size_x_pixels"] * 2
    assert row["rlnTomoSizeZ"] == event["size_z_pixels"] * 2
    # the depth follows the thickness estimated from the tomogram (400 Å slab), not the 800 Å asked
    assert 200.0 < event["sample_thickness_angstroms"] < 800.0
    assert event["size_z_pixels"] * event["pixel_spacing_angstroms"] < 800.0
    assert row["rlnTomoTiltSeriesStarFile"] == "AlignTiltSeries/job005/tilt_series/cm40000-1_Position_2.star"
    # the half tomograms of the even and odd frames, where RELION's denoising (cryoCARE) looks for them
    assert row["rlnTomoReconstructedTomogramHalf1"] == str(data / event["tomogram_even"]["path"])
    assert row["rlnTomoReconstructedTomogramHalf2"] == str(data / event["tomogram_odd"]["path"])


def test_default_pipeline_lists_the_jobs_and_their_nodes(project: dict[str, Any]) -> None:
    pipeline = starfile.read(project["root"] / PIPELINE_STAR, always_dict=True)
    processes = pipeline["pipeline_processes"]
    assert list(processes["rlnPipeLineProcessTypeLabel"]) == [
        "relion.importtomo",
        "relion.motioncorr.own",
        "relion.ctffind.ctffind4",
        "relion.excludetilts",
        "relion.aligntiltseries",
        "relion.reconstructtomograms",
    ]
    nodes = list(pipeline["pipeline_nodes"]["rlnPipeLineNodeName"])
    assert all((project["root"] / node).is_file() for node in nodes)
    edges = pipeline["pipeline_input_edges"]
    assert list(edges["rlnPipeLineEdgeFromNode"]) == nodes[:-1]


def test_replay_and_version_2_rewrite_rows_and_an_older_version_is_ignored(
    project: dict[str, Any], series: SimulatedSeries
) -> None:
    data, root = project["data"], project["root"]
    request = project["requests"]["Position_1"]
    _reconstruct(data, request)  # a replay of version 1
    for job, star, _, _, _ in JOBS:
        assert list(_read(root / job / star)["rlnTomoName"]).count("cm40000-1_Position_1") == 1
    version_2 = reconstruction_request(
        series,
        data,
        name="Position_1",
        version=2,
        excluded={**EXCLUDED, 7: "operator"},
        binning=2,
        defocus_angstroms=DEFOCUS,
    )
    _reconstruct(data, version_2)
    selected = root / "ExcludeTiltImages/job004/tilt_series/cm40000-1_Position_1.star"
    assert len(_read(selected)) == len(request["tilts"]) - 3
    tomograms = _read(root / TOMOGRAMS_JOB[0] / TOMOGRAMS_JOB[1])
    assert len(tomograms) == 2
    # version 2 came without frame halves: no half columns for Position_1's tilts, and none in
    # tomograms.star either (a column RELION reads for every tomogram is written only where all have it)
    corrected = _read(root / "MotionCorr/job002/tilt_series/cm40000-1_Position_1.star")
    assert "rlnMicrographNameEven" not in corrected.columns
    assert "rlnTomoReconstructedTomogramHalf1" not in tomograms.columns
    assert (
        "/v2/"
        in tomograms.set_index("rlnTomoName").loc["cm40000-1_Position_1", "rlnTomoReconstructedTomogram"]
    )
    _reconstruct(data, request)  # version 1 again, late: the project keeps version 2
    assert len(_read(selected)) == len(request["tilts"]) - 3
    leftovers = [p for p in root.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_the_processors_files_pass_independent_readers(project: dict[str, Any]) -> None:
    data = project["data"] / "processed"
    event = project["events"]["Position_2"]
    for key in ("tomogram", "aligned_stack"):
        assert mrcfile.validate(str(data / event[key]["path"]), print_file=io.StringIO()), key
    aln = AreTomo3ALN.from_file(data / event["alignment_file"]["path"])
    imod = Alignment.from_aretomo3(aln).to_imod(ts_size=aln.RawSize)
    used = [a for a in event["tilt_alignments"] if a["included"]]
    pixel = project["requests"]["Position_2"]["pixel_size_angstroms"]
    # the reader's IMOD files have a row per raw section, the tilts the alignment left out (the .aln's
    # dark frames) as placeholders to exclude; ours have the rows of the aligned stack, the tilts used
    kept = aln.get_global_alignments("numpy")[:, 0].astype(int)  # SEC of each row
    left_out = [i for i, a in enumerate(event["tilt_alignments"]) if not a["included"]]
    assert [d.section_idx for d in aln.DarkFrames] == left_out
    assert sorted({*kept.tolist(), *left_out}) == list(range(len(event["tilt_alignments"])))
    assert np.allclose(imod.tlt.numpy()[kept], [a["refined_tilt_angle_degrees"] for a in used], atol=0.01)
    ours = ImodXF.from_file(data / event["imod_xf"]["path"]).numpy()
    assert np.allclose(imod.xf.numpy()[kept, :4], ours[:, :4], atol=1e-4)
    assert np.allclose(imod.xf.numpy()[kept, 4:], ours[:, 4:], atol=0.01)
    shifts = -aln.get_global_alignments("numpy")[:, 3:5] * pixel  # TX, TY: the specimen's displacement
    expected = [[a["shift_x_angstroms"], a["shift_y_angstroms"]] for a in used]
    assert np.allclose(shifts, expected, atol=0.001 * pixel)
