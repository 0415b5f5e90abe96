"""The denoising step: ``TomogramReconstructed`` in, ``TomogramDenoised`` out."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from tiltstream.processors.denoise.settings import DenoiseSettings
from tiltstream.processors.runtime import CorruptInputError, DataRoots, Job, Output, Processor
from tiltstream.processors.runtime.volume_io import read_mrc, write_mrc, write_png
from tiltstream.streams.events import DataPath, TomogramDenoised, TomogramReconstructed

__all__ = ["DenoiseProcessor"]


class DenoiseProcessor(Processor[np.ndarray]):
    """Denoise one tomogram with Topaz's pretrained 3-D network.

    Outputs go beside the tomogram (``<stem>_denoised.mrc`` and ``<stem>_denoised_slice.png`` under
    the output root), so each request version keeps its own.
    """

    stage = "denoise"
    input_record = "TomogramReconstructed"
    output_record = "TomogramDenoised"

    def __init__(self, settings: DenoiseSettings, roots: DataRoots | None = None) -> None:
        super().__init__(roots or DataRoots.from_settings(settings), settings.output_root)
        self.settings = settings
        self._device: Any = None
        self._model: Any = None

    def load(self, value: dict[str, Any]) -> np.ndarray:
        """Read the tomogram (d, h, w)."""
        return self._read(TomogramReconstructed.from_dict(value).tomogram)

    def _read(self, tomogram: DataPath) -> np.ndarray:
        where = self.roots.where(tomogram.to_dict())
        try:
            volume = read_mrc(self.open_input(tomogram), permissive=True)
        except FileNotFoundError as exc:
            raise CorruptInputError(f"tomogram missing: {where}") from exc
        if volume.ndim != 3:
            raise CorruptInputError(f"tomogram {where} has shape {volume.shape}")
        return volume

    def _denoise(self, volume: np.ndarray) -> np.ndarray:
        from tiltstream.processors.denoise.tiled import denoise_volume
        from tiltstream.processors.denoise.topaz_model import load_topaz_model
        from tiltstream.processors.device import resolve_device

        if self._model is None:
            self._device = resolve_device(self.settings.device)
            self._model = load_topaz_model(self.settings.model, self._device)
        return denoise_volume(
            volume, self._model, self._device, self.settings.patch_size_pixels, self.settings.padding_pixels
        )

    def process(self, job: Job, inputs: np.ndarray | None) -> list[Output]:
        """Denoise, write the volume and its central slice, build the event."""
        start = time.monotonic()
        tomogram = job.event(TomogramReconstructed)
        volume = inputs if inputs is not None else self._read(tomogram.tomogram)
        denoised = self._denoise(volume)
        source = PurePosixPath(tomogram.tomogram.path)
        stem = source.with_name(source.stem)
        volume_path, local = self.output_path(f"{stem}_denoised.mrc")
        write_mrc(local, denoised, tomogram.pixel_spacing_angstroms)
        slice_path, local = self.output_path(f"{stem}_denoised_slice.png")
        write_png(local, denoised[denoised.shape[0] // 2], max_pixels=self.settings.png_max_pixels)
        event = TomogramDenoised(
            metadata=self.output_metadata(
                job, (tomogram.request_id, self.settings.model), self.settings.instance
            ),
            request_id=tomogram.request_id,
            version=tomogram.version,
            tomogram=tomogram.tomogram,
            denoised_tomogram=volume_path,
            central_slice=slice_path,
            model=self.settings.model,
            patch_size_pixels=self.settings.patch_size_pixels,
            padding_pixels=self.settings.padding_pixels,
            backend=f"topaz-em {_topaz_version()}",
            duration_seconds=time.monotonic() - start,
        )
        return [Output.of(event)]


def _topaz_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("topaz-em")
    except PackageNotFoundError:
        return "unknown"
