"""Edges of the log: the acquisition source (watch, transfer, mdoc) and the ISPyB sink."""
