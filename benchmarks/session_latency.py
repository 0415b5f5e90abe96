"""Where a series' time goes in a live session: last tilt's file complete -> tomogram -> denoised.

Runs the demo's simulated session through every service (local broker, SQLite ISPyB) and splits each
series' latency along its critical path into time queued, processing and in orchestration (see
``tiltstream.session_latency``), as p50/p99 over the series. The baseline the orchestration share is
measured against is the processing time of the same run: the figure to drive towards zero is
``orchestration / processing``::

    python benchmarks/session_latency.py [--positions 3] [--size 512] [--workdir DIR]

On 2 CPU cores every service shares the same cores, so queueing is large; on a cluster with a GPU per
processor the queued share shrinks and orchestration is what is left.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from tiltstream.demo_session import DemoOptions, run_demo_session
from tiltstream.log import configure_logging
from tiltstream.pipeline_view import summary_table
from tiltstream.session_latency import latency_table, percentile
from tiltstream.settings import LoggingSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=3, help="tilt series acquired in parallel")
    parser.add_argument("--size", type=int, default=512, help="movie size in pixels")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the session here")
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING", format="console"))
    console = Console()
    with tempfile.TemporaryDirectory(prefix="tiltstream-latency-") as scratch:
        workdir = args.workdir or Path(scratch) / "session"
        options = DemoOptions(
            workdir=workdir,
            positions=args.positions,
            size_pixels=args.size,
            timeout_seconds=1800,
            extra_env={"TILTSTREAM_AGGREGATOR_GRACE_SECONDS": "1800"},
        )
        console.print(
            f"{args.positions} series of {options.tilts} tilts at {args.size}², every service on this machine"
        )
        result = run_demo_session(options)
    console.print(summary_table(result.summaries))
    console.print(latency_table(result.latencies))
    for target in ("tomogram", "denoised"):
        splits = [b for b in (getattr(s, target) for s in result.latencies) if b is not None]
        if not splits:
            console.print(f"[red]no series reached its {target}[/]")
            continue
        orchestration = percentile([b.orchestration_seconds for b in splits], 0.5)
        processing = percentile([b.processing_seconds for b in splits], 0.5)
        console.print(
            f"to {target}: orchestration p50 {orchestration:.1f} s against processing p50 "
            f"{processing:.1f} s: ratio {orchestration / processing:.2f}"
        )


if __name__ == "__main__":
    main()
