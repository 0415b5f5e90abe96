"""Where a stage writes: ``<session>/<output folder>/<tilt series>/...`` under the output root.

Every output path names the tilt series, so movies of the same name in different series of a session
(``Position_1_001.tiff`` of three beam-shift targets, or of a series acquired again) never overwrite
each other's results; the path depends only on the input event, so a redone job replaces its own files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["folder_name", "series_folder", "series_output", "series_path"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def folder_name(name: str) -> str:
    """``name`` as one path segment: characters other than letters, digits, ``._-`` become ``_``.

    ``cm40000-1:Position_1`` becomes ``cm40000-1_Position_1``; ``.`` and ``..`` are never returned.
    """
    safe = _UNSAFE.sub("_", name)
    return f"_{safe}" if safe.strip(".") == "" else safe


def series_folder(value: Mapping[str, Any], output_folder: str) -> str:
    """``<session>/<output_folder>/<series>`` for an event ``value`` (from its metadata)."""
    meta = value["metadata"]
    return (
        f"{folder_name(str(meta['session_id']))}/{output_folder}/{folder_name(str(meta['tilt_series_id']))}"
    )


def series_path(session_id: str, tilt_series_id: str, output_folder: str, name: str) -> str:
    """``<session>/<output_folder>/<series>/<name>`` for a typed event's metadata ids."""
    return f"{folder_name(session_id)}/{output_folder}/{folder_name(tilt_series_id)}/{name}"


def series_output(value: Mapping[str, Any], output_folder: str, name: str) -> str:
    """``<session>/<output_folder>/<series>/<name>``: the relative path of one output file."""
    return f"{series_folder(value, output_folder)}/{name}"
