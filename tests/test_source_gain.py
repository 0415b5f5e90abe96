"""Gain references found by the source and carried in MovieAcquired: SerialEM's CountRef_* beside the
frames (the newest), the mdoc's GainReference, or the one the session parameters name."""

from __future__ import annotations

import os
from pathlib import Path

import mrcfile
import numpy as np
from source_fixtures import fast_source_settings, read_topic, run_watcher, simulate_small

from tiltstream.connectors.source import Watcher
from tiltstream.connectors.source.gain import find_gain_reference
from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.settings import CliSettings


def _gain(path: Path, mtime_s: float) -> None:
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((256, 256), dtype=np.float32))
    os.utime(path, (mtime_s, mtime_s))


def test_count_ref_beside_the_frames_reaches_every_movie(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    simulate_small(session)
    _gain(session / "CountRef_old.mrc", 1_000_000)
    _gain(session / "CountRef_new.mrc", 2_000_000)
    watcher = run_watcher(session, fast_source_settings(acquisition_settings))
    assert watcher.done()
    movies = [e.value for e in read_topic(acquisition_settings, "MovieAcquired") if e.value is not None]
    assert movies
    assert {m["gain_reference"]["path"] for m in movies} == {"cm40000-1/CountRef_new.mrc"}
    assert {m["gain_reference"]["root"] for m in movies} == {"raw"}


def test_session_parameter_and_mdoc_gain_reference_come_first(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    simulate_small(session)
    (session / "gains").mkdir()
    _gain(session / "gains" / "K3_gain.mrc", 1_000_000)
    _gain(session / "CountRef_x.mrc", 2_000_000)
    _gain(session / "SuperRef_from_mdoc.mrc", 1_500_000)
    params = SessionParameters(version=1, gain_reference="gains/K3_gain.mrc")
    watcher = Watcher(session, fast_source_settings(acquisition_settings, parameters=params))
    series = watcher._new_series(session / "Position_1.mdoc", 0.0)
    found = find_gain_reference(watcher, series, "X:\\frames\\SuperRef_from_mdoc.mrc")
    assert found == session / "gains" / "K3_gain.mrc"
    watcher.parameters = SessionParameters()
    assert (
        find_gain_reference(watcher, series, "X:\\frames\\SuperRef_from_mdoc.mrc")
        == session / "SuperRef_from_mdoc.mrc"
    )
    assert find_gain_reference(watcher, series, None) == session / "CountRef_x.mrc"
    watcher.close()


def test_the_sessions_detector_values_and_defect_file_reach_every_movie(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    """Gain orientation, EER grouping and sampling and the defect file the session parameters name travel
    in every MovieAcquired, with the parameters' version (issue 14 item 4)."""
    session = tmp_path / "raw" / "cm40000-1"
    simulate_small(session)
    _gain(session / "CountRef_x.mrc", 1_000_000)
    (session / "falcon_defects.txt").write_text("12 0 1 256\n")
    params = SessionParameters(
        version=3,
        gain_rotation_quarter_turns=1,
        gain_flip=2,
        eer_dose_per_output_frame_e_per_angstrom2=0.2,
        eer_sampling=2,
        defect_file="falcon_defects.txt",
    )
    watcher = run_watcher(session, fast_source_settings(acquisition_settings, parameters=params))
    assert watcher.done()
    movies = [e.value for e in read_topic(acquisition_settings, "MovieAcquired") if e.value is not None]
    assert movies
    carried = {
        (
            m["gain_rotation_quarter_turns"],
            m["gain_flip"],
            m["eer_group_frames"],
            m["eer_dose_per_output_frame_e_per_angstrom2"],
            m["eer_sampling"],
            m["defect_file"]["root"],
            m["defect_file"]["path"],
            m["session_parameters_version"],
        )
        for m in movies
    }
    assert carried == {(1, 2, None, 0.2, 2, "raw", "cm40000-1/falcon_defects.txt", 3)}


def test_a_defect_file_named_but_absent_refuses_the_movies_with_the_reason(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    simulate_small(session)
    params = SessionParameters(version=1, defect_file="no_such_defects.txt")
    watcher = run_watcher(session, fast_source_settings(acquisition_settings, parameters=params))
    assert watcher.done()
    assert not [e for e in read_topic(acquisition_settings, "MovieAcquired") if e.value is not None]
    refusals = [e.value for e in read_topic(acquisition_settings, "ProcessingFailed") if e.value is not None]
    assert refusals
    assert {r["error_class"] for r in refusals} == {"InvalidAcquisitionValueError"}
    assert all("defect_file: 'no_such_defects.txt'" in r["error_message"] for r in refusals)
