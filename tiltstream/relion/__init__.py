"""A RELION 5 tomography project per session, kept up to date as tilt series are reconstructed."""

from tiltstream.relion.project import relion_project_folder, write_series
from tiltstream.relion.tables import SeriesTables, series_tables

__all__ = ["SeriesTables", "relion_project_folder", "series_tables", "write_series"]
