"""A microscope simulator: tomography sessions on disk, with movies, progressive .mdoc files and truth.

``tiltstream simulate SESSION_DIR`` writes what a SerialEM/PACE-tomo session writes (one movie per tilt as
LZW TIFF or MRC, one progressive ``.mdoc`` per tilt series) plus a ground-truth file per series, with
images formed from a seeded 3-D phantom (ice slab, particles, vesicle membranes, gold beads).
"""

from tiltstream.connectors.simulator.faults import Fault, FaultKind, parse_fault
from tiltstream.connectors.simulator.ground_truth import SeriesTruth, TiltTruth, load_ground_truth
from tiltstream.connectors.simulator.schemes import tilt_scheme
from tiltstream.connectors.simulator.session import SimulatedMovie, simulate_session
from tiltstream.connectors.simulator.settings import SimulatorSettings

__all__ = [
    "Fault",
    "FaultKind",
    "SeriesTruth",
    "SimulatedMovie",
    "SimulatorSettings",
    "TiltTruth",
    "load_ground_truth",
    "parse_fault",
    "simulate_session",
    "tilt_scheme",
]
